/**
 * A hand-written policy module implementing the OPA wasm ABI (v1.2), compiled from WAT with wabt,
 * and packed into an `opa build -t wasm`-shaped .tar.gz — no OPA binary exists here.
 *
 * Entrypoints: `authz/allow` is true when the input JSON contains `"role":"admin"`; `authz/data`
 * returns the data document it was given (to show data loading); `authz/hash` calls the host
 * built-in `crypto.sha256` on the input (through `opa_builtin1`); `authz/now` returns the host
 * built-in `time.now_ns()` (through `opa_builtin0`); any other id is undefined.
 */
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import wabtInit from 'wabt';

const ENTRYPOINTS = '{"authz/allow":0,"authz/data":1,"authz/undefined":2,"authz/hash":3,"authz/now":4}';

export const POLICY_WAT = `
(module
  (import "env" "memory" (memory 2))
  (import "env" "opa_abort" (func $opa_abort (param i32)))
  (import "env" "opa_println" (func $opa_println (param i32)))
  (import "env" "opa_builtin0" (func $b0 (param i32 i32) (result i32)))
  (import "env" "opa_builtin1" (func $b1 (param i32 i32 i32) (result i32)))
  (import "env" "opa_builtin2" (func $b2 (param i32 i32 i32 i32) (result i32)))
  (import "env" "opa_builtin3" (func $b3 (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "opa_builtin4" (func $b4 (param i32 i32 i32 i32 i32 i32) (result i32)))
  (global $heap (mut i32) (i32.const 8192))
  (global (export "opa_wasm_abi_version") i32 (i32.const 1))
  (global (export "opa_wasm_abi_minor_version") i32 (i32.const 2))
  (data (i32.const 1024) "{}\\00")
  (data (i32.const 1300) "{\\"crypto.sha256\\":0,\\"time.now_ns\\":1}\\00")
  (data (i32.const 1400) ${JSON.stringify(ENTRYPOINTS + '\u0000').replace('\\u0000', '\\00')})
  (data (i32.const 1100) "[{\\"result\\":true}]\\00")
  (data (i32.const 1130) "[{\\"result\\":false}]\\00")
  (data (i32.const 1160) "\\"role\\":\\"admin\\"")
  (data (i32.const 1180) "[]\\00")
  (data (i32.const 1200) "[{\\"result\\":")
  (data (i32.const 1220) "}]\\00")
  (data (i32.const 2000) "\\14\\05\\00\\00\\00\\00\\00\\00")
  (data (i32.const 2008) "\\78\\05\\00\\00\\00\\00\\00\\00")

  (func $malloc (export "opa_malloc") (param $n i32) (result i32)
    (local $p i32)
    global.get $heap
    local.set $p
    global.get $heap
    local.get $n
    i32.add
    i32.const 7
    i32.add
    i32.const -8
    i32.and
    global.set $heap
    local.get $p)
  (func (export "opa_free") (param i32))
  (func $parse (export "opa_json_parse") (param $p i32) (param $n i32) (result i32)
    (local $v i32) (local $copy i32)
    local.get $n
    i32.const 1
    i32.add
    call $malloc
    local.set $copy
    local.get $copy
    local.get $p
    local.get $n
    call $copy
    i32.const 0
    i32.store8
    i32.const 8
    call $malloc
    local.set $v
    local.get $v
    local.get $copy
    i32.store
    local.get $v
    local.get $n
    i32.store offset=4
    local.get $v)
  (func (export "opa_value_parse") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    call $parse)
  (func $dump (export "opa_json_dump") (param $v i32) (result i32)
    local.get $v
    i32.load)
  (func (export "opa_value_dump") (param i32) (result i32)
    local.get 0
    call $dump)
  (func (export "opa_heap_ptr_get") (result i32) global.get $heap)
  (func (export "opa_heap_ptr_set") (param i32) local.get 0 global.set $heap)
  (func (export "builtins") (result i32) i32.const 2000)
  (func (export "entrypoints") (result i32) i32.const 2008)

  (func $contains (param $h i32) (param $hn i32) (param $nd i32) (param $nn i32) (result i32)
    (local $i i32) (local $j i32)
    block $notfound
      loop $outer
        local.get $i
        local.get $nn
        i32.add
        local.get $hn
        i32.gt_u
        br_if $notfound
        i32.const 0
        local.set $j
        block $mismatch
          loop $inner
            local.get $j
            local.get $nn
            i32.ge_u
            if
              i32.const 1
              return
            end
            local.get $h
            local.get $i
            i32.add
            local.get $j
            i32.add
            i32.load8_u
            local.get $nd
            local.get $j
            i32.add
            i32.load8_u
            i32.ne
            br_if $mismatch
            local.get $j
            i32.const 1
            i32.add
            local.set $j
            br $inner
          end
        end
        local.get $i
        i32.const 1
        i32.add
        local.set $i
        br $outer
      end
    end
    i32.const 0)

  (func $copy (param $dst i32) (param $src i32) (param $n i32) (result i32)
    (local $k i32)
    block $done
      loop $l
        local.get $k
        local.get $n
        i32.ge_u
        br_if $done
        local.get $dst
        local.get $k
        i32.add
        local.get $src
        local.get $k
        i32.add
        i32.load8_u
        i32.store8
        local.get $k
        i32.const 1
        i32.add
        local.set $k
        br $l
      end
    end
    local.get $dst
    local.get $n
    i32.add)

  (func $evaluate (param $ep i32) (param $data i32) (param $in i32) (param $inLen i32) (result i32)
    (local $out i32) (local $p i32)
    local.get $ep
    i32.eqz
    if
      local.get $in
      local.get $inLen
      i32.const 1160
      i32.const 14
      call $contains
      if (result i32)
        i32.const 1100
      else
        i32.const 1130
      end
      return
    end
    local.get $ep
    i32.const 4
    i32.eq
    if
      i32.const 1
      i32.const 0
      call $b0
      local.set $data
      i32.const 1
      local.set $ep
    end
    local.get $ep
    i32.const 3
    i32.eq
    if
      i32.const 0
      i32.const 0
      local.get $in
      local.get $inLen
      call $parse
      call $b1
      local.set $data
      local.get $data
      i32.eqz
      if
        i32.const 1180
        return
      end
      i32.const 1
      local.set $ep
    end
    local.get $ep
    i32.const 1
    i32.eq
    if
      local.get $data
      i32.load offset=4
      i32.const 16
      i32.add
      call $malloc
      local.set $out
      local.get $out
      i32.const 1200
      i32.const 11
      call $copy
      local.set $p
      local.get $p
      local.get $data
      i32.load
      local.get $data
      i32.load offset=4
      call $copy
      local.set $p
      local.get $p
      i32.const 1220
      i32.const 3
      call $copy
      drop
      local.get $out
      return
    end
    i32.const 1180)

  (func (export "opa_eval") (param $r i32) (param $ep i32) (param $data i32) (param $in i32) (param $inLen i32) (param $heapPtr i32) (param $fmt i32) (result i32)
    local.get $heapPtr
    global.set $heap
    local.get $ep
    local.get $data
    local.get $in
    local.get $inLen
    call $evaluate)

  (func (export "opa_eval_ctx_new") (result i32)
    (local $c i32)
    i32.const 16
    call $malloc
    local.set $c
    local.get $c
    i64.const 0
    i64.store
    local.get $c
    i64.const 0
    i64.store offset=8
    local.get $c)
  (func (export "opa_eval_ctx_set_input") (param $c i32) (param $v i32)
    local.get $c
    local.get $v
    i32.store)
  (func (export "opa_eval_ctx_set_data") (param $c i32) (param $v i32)
    local.get $c
    local.get $v
    i32.store offset=4)
  (func (export "opa_eval_ctx_set_entrypoint") (param $c i32) (param $e i32)
    local.get $c
    local.get $e
    i32.store offset=8)
  (func (export "opa_eval_ctx_get_result") (param $c i32) (result i32)
    local.get $c
    i32.load offset=12)
  (func (export "eval") (param $c i32) (result i32)
    (local $in i32) (local $res i32)
    local.get $c
    i32.load
    local.set $in
    i32.const 8
    call $malloc
    local.set $res
    local.get $res
    local.get $c
    i32.load offset=8
    local.get $c
    i32.load offset=4
    local.get $in
    if (result i32)
      local.get $in
      i32.load
    else
      i32.const 0
    end
    local.get $in
    if (result i32)
      local.get $in
      i32.load offset=4
    else
      i32.const 0
    end
    call $evaluate
    i32.store
    local.get $c
    local.get $res
    i32.store offset=12
    i32.const 0)
)
`;

/** Compiles the WAT above (or another text) to wasm bytes. */
export async function compileWat(text = POLICY_WAT): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('policy.wat', text);
  try {
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** Packs files into a .tar.gz the way `opa build` lays out a bundle. */
export async function packBundle(files: Record<string, string | Uint8Array>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) {
    const buf = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
    await new Promise<void>((resolve, reject) => p.entry({ name, size: buf.length }, buf, (err) => (err ? reject(err) : resolve())));
  }
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}
