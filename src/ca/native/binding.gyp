# The native P-256 verifier (p256_verify.c), built by scripts/build-native.mjs (`npm run build:native`,
# run by `npm install` / `npm ci` through `prepare`). No library to link: the addon uses the OpenSSL
# that node itself contains and exports, through the headers node ships (include/node/openssl).
{
  "targets": [
    {
      "target_name": "p256_verify",
      "sources": ["p256_verify.c"],
      # EC_KEY / ECDSA_do_verify are deprecated in OpenSSL 3.0, and are the fast path.
      "defines": ["NAPI_VERSION=8", "OPENSSL_SUPPRESS_DEPRECATED"],
      "cflags": ["-Wall", "-Wextra"],
      "xcode_settings": { "OTHER_CFLAGS": ["-Wall", "-Wextra"] }
    }
  ]
}
