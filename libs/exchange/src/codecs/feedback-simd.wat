;; topk error feedback's per-round pass in WebAssembly SIMD (v128), for ErrorFeedback in
;; topk.codec.ts: compensated = pending = grad + residual, float32, four elements per step. A
;; float32 addition is the same in WebAssembly as in TypeScript's Math.fround(a + b) (float64
;; rounding of a sum of two float32 is innocuous), so the bits equal the scalar loop's.
;; Pointers are byte offsets into the imported memory.
;;
;; Regenerate the embedded bytes (feedback-simd.wasm.ts) after editing this file:
;;   node scripts/embed-wat.mjs libs/exchange/src/codecs/feedback-simd.wat FEEDBACK_SIMD_WASM_BASE64
(module
  (memory (import "env" "memory") 1)

  ;; c[i] = p[i] = g[i] + r[i] for n float32.
  (func (export "compensate") (param $g i32) (param $r i32) (param $c i32) (param $p i32) (param $n i32)
    (local $end i32) (local $s v128) (local $x f32)
    (local.set $end (i32.add (local.get $g) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $d4
      (loop $l4
        (br_if $d4 (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $s (f32x4.add (v128.load (local.get $g)) (v128.load (local.get $r))))
        (v128.store (local.get $c) (local.get $s))
        (v128.store (local.get $p) (local.get $s))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $r (i32.add (local.get $r) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l4)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $dt
      (loop $lt
        (br_if $dt (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $x (f32.add (f32.load (local.get $g)) (f32.load (local.get $r))))
        (f32.store (local.get $c) (local.get $x))
        (f32.store (local.get $p) (local.get $x))
        (local.set $g (i32.add (local.get $g) (i32.const 4)))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $lt)))))
