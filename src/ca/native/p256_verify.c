/*
 * ECDSA P-256 / SHA-256 signature check for CSRs, on OpenSSL's low-level EC API.
 *
 * Why: node:crypto has to build a KeyObject for every CSR key (createPublicKey from JWK, which
 * also runs OpenSSL's full public-key check, ≈ 60–75 µs) and OpenSSL 3 then converts that legacy
 * key for its provider on first use in crypto.verify (≈ 70 µs): 122–175 µs per CSR. The same
 * verify with a key already built costs ≈ 56 µs; this addon does it with a fresh key in 52–58 µs
 * (one core, pinned; see docs/ca-sds.md). Only the EVP / provider / decoder overhead goes away:
 * the math is OpenSSL's own (the one node itself links and exports), the same code node's path
 * ends in (ossl_ecdsa_verify → ECDSA_do_verify).
 *
 * The checks, as strict as OpenSSL's EVP path (test/ca/p256-verify.test.ts compares both):
 * - the key is a 65-byte uncompressed point (0x04 ‖ X ‖ Y) that EC_POINT_oct2point accepts: both
 *   coordinates below p and the point on the curve. An affine point is never the point at
 *   infinity, and P-256's cofactor is 1, so every such point has order n: nothing else to check.
 * - the signature is DER that decodes completely (no trailing bytes) and re-encodes to the same
 *   bytes (no BER, no non-minimal integers), as ECDSA_verify does; r and s in [1, n-1] are
 *   checked by ECDSA_do_verify.
 * - the digest is exactly 32 bytes (SHA-256); anything else is a caller bug and throws.
 *
 * Compiled with OPENSSL_SUPPRESS_DEPRECATED (binding.gyp): EC_KEY and ECDSA_do_verify are
 * deprecated in OpenSSL 3.0 but they are the fast path, and still OpenSSL's supported code.
 *
 * State: one EC_GROUP per Node environment (napi instance data, freed with the environment),
 * read-only once created; so the addon can be loaded by worker threads. No other static state.
 */
#include <limits.h>
#include <string.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#define POINT_LEN 65
#define DIGEST_LEN 32
/* 30 46 | 02 21 00 r(32) | 02 21 00 s(32): the longest DER ECDSA-P-256 signature. */
#define MAX_SIG_LEN 72

/* 1 when `der` is a valid signature of `digest` by `point`, 0 otherwise (never an error). */
static int verify_p256(const EC_GROUP *group, const unsigned char *point, size_t point_len,
                       const unsigned char *digest, const unsigned char *der, size_t der_len) {
  int ok = 0;
  ECDSA_SIG *sig = NULL;
  unsigned char *reencoded = NULL;
  EC_KEY *key = NULL;
  EC_POINT *pub = NULL;
  const unsigned char *cursor = der;
  int reencoded_len;

  if (point_len != POINT_LEN || point[0] != 0x04) return 0;
  if (der_len == 0 || der_len > MAX_SIG_LEN) return 0;

  sig = d2i_ECDSA_SIG(NULL, &cursor, (long)der_len);
  if (sig == NULL || (size_t)(cursor - der) != der_len) goto done;
  reencoded_len = i2d_ECDSA_SIG(sig, &reencoded);
  if (reencoded_len <= 0 || (size_t)reencoded_len != der_len || memcmp(reencoded, der, der_len) != 0) goto done;

  key = EC_KEY_new();
  pub = EC_POINT_new(group);
  if (key == NULL || pub == NULL) goto done;
  if (EC_KEY_set_group(key, group) != 1) goto done;
  if (EC_POINT_oct2point(group, pub, point, point_len, NULL) != 1) goto done;
  if (EC_KEY_set_public_key(key, pub) != 1) goto done;
  ok = ECDSA_do_verify(digest, DIGEST_LEN, sig, key) == 1;

done:
  OPENSSL_free(reencoded);
  ECDSA_SIG_free(sig);
  EC_POINT_free(pub);
  EC_KEY_free(key);
  /* A rejected input leaves reasons on this thread's OpenSSL error queue: node:crypto must not
   * find them there afterwards. */
  if (!ok) ERR_clear_error();
  return ok;
}

/* Buffer or other ArrayBufferView argument; 0 with a TypeError pending otherwise. */
static int buffer_arg(napi_env env, napi_value value, const char *name, const unsigned char **data, size_t *len) {
  bool is_buffer = false;
  void *bytes = NULL;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, &bytes, len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", name);
    return 0;
  }
  *data = bytes;
  return 1;
}

/* verify(point: Buffer, digest: Buffer, derSignature: Buffer): boolean */
static napi_value js_verify(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *group = NULL;
  const unsigned char *point, *digest, *sig;
  size_t point_len, digest_len, sig_len;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, &group) != napi_ok || group == NULL) {
    napi_throw_error(env, NULL, "p256_verify: cannot read the call's arguments");
    return NULL;
  }
  if (argc != 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "verify(point, digest, signature) takes 3 buffers");
    return NULL;
  }
  if (!buffer_arg(env, argv[0], "point must be a Buffer", &point, &point_len) ||
      !buffer_arg(env, argv[1], "digest must be a Buffer", &digest, &digest_len) ||
      !buffer_arg(env, argv[2], "signature must be a Buffer", &sig, &sig_len)) return NULL;
  if (digest_len != DIGEST_LEN) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "digest must be 32 bytes (SHA-256)");
    return NULL;
  }
  if (napi_get_boolean(env, verify_p256(group, point, point_len, digest, sig, sig_len), &result) != napi_ok) {
    napi_throw_error(env, NULL, "p256_verify: cannot create the result");
    return NULL;
  }
  return result;
}

static void free_group(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  EC_GROUP_free(data);
}

/* The environment's group, created on first load in that environment. */
static EC_GROUP *environment_group(napi_env env) {
  void *existing = NULL;
  EC_GROUP *group;
  if (napi_get_instance_data(env, &existing) != napi_ok) return NULL;
  if (existing != NULL) return existing;
  group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  if (group == NULL) {
    ERR_clear_error();
    return NULL;
  }
  if (napi_set_instance_data(env, group, free_group, NULL) != napi_ok) {
    EC_GROUP_free(group);
    return NULL;
  }
  return group;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  EC_GROUP *group = environment_group(env);
  if (group == NULL) {
    napi_throw_error(env, NULL, "p256_verify: cannot create the P-256 group");
    return NULL;
  }
  if (napi_create_function(env, "verify", NAPI_AUTO_LENGTH, js_verify, group, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "verify", fn) != napi_ok) {
    napi_throw_error(env, NULL, "p256_verify: cannot export verify");
    return NULL;
  }
  return exports;
}
