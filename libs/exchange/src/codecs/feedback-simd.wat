;; topk error feedback's per-round passes in WebAssembly SIMD (v128), for ErrorFeedback and
;; TopkCodec in topk.codec.ts, four elements per step:
;;   compensate: compensated = pending = grad + residual, float32. A float32 addition is the same
;;     in WebAssembly as TypeScript's Math.fround(a + b) (float64 rounding of a sum of two float32
;;     is innocuous), so the bits equal the scalar loop's;
;;   candidates: the elements of a compensated chunk at or above a magnitude bound, for the topk
;;     encode (the same elements as its TypeScript candidate pass).
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
        (br $lt))))

  ;; The indices (u32 at idx) and magnitudes (f32 at mag) of the elements of src[0, n) whose
  ;; magnitude bits are at least bb (for a magnitude bound that is not NaN: |x| ≥ bound), in
  ;; index order; their count, or -1 when there are more than room, or -2 when one is NaN.
  ;; Magnitude bits of non-negative floats order like the values, and NaN's are above ±Infinity's;
  ;; they are below 2³¹, so the lanes compare signed (x86 has no unsigned i32x4 compare).
  (func (export "candidates") (param $src i32) (param $n i32) (param $bb i32) (param $idx i32) (param $mag i32) (param $room i32) (result i32)
    (local $i i32) (local $end4 i32) (local $vb v128) (local $a i32) (local $c i32) (local $lane i32)
    (local.set $vb (i32x4.splat (local.get $bb)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.or (i32.ge_u (local.get $i) (local.get $end4))
              (v128.any_true (i32x4.ge_s
                (v128.and (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))
                  (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
                (local.get $vb))))
          (then
            ;; One of these four passes (or the tail): element by element.
            (local.set $lane (i32.const 0))
            (block $ld
              (loop $ll
                (br_if $ld (i32.or (i32.eq (local.get $lane) (i32.const 4))
                  (i32.ge_u (i32.add (local.get $i) (local.get $lane)) (local.get $n))))
                (local.set $a (i32.and (i32.load (i32.add (local.get $src) (i32.shl (i32.add (local.get $i) (local.get $lane)) (i32.const 2))))
                  (i32.const 0x7fffffff)))
                (if (i32.ge_u (local.get $a) (local.get $bb))
                  (then
                    (if (i32.gt_u (local.get $a) (i32.const 0x7f800000)) (then (return (i32.const -2))))
                    (if (i32.eq (local.get $c) (local.get $room)) (then (return (i32.const -1))))
                    (i32.store (i32.add (local.get $idx) (i32.shl (local.get $c) (i32.const 2))) (i32.add (local.get $i) (local.get $lane)))
                    (i32.store (i32.add (local.get $mag) (i32.shl (local.get $c) (i32.const 2))) (local.get $a))
                    (local.set $c (i32.add (local.get $c) (i32.const 1)))))
                (local.set $lane (i32.add (local.get $lane) (i32.const 1)))
                (br $ll)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l)))
    (local.get $c)))
