;; float32 → IEEE half and float32 → bfloat16 encoding, and IEEE half decoding and checking, in
;; WebAssembly SIMD (v128), for fp16.codec.ts and bf16.codec.ts. Eight elements per step; n must
;; be a multiple of 8 (the caller does the rest in TypeScript).
;;
;; Every function computes exactly what the scalar TypeScript computes (f32BitsToHalf,
;; f32BitsToBf16), bit for bit (the codec tests compare the two on random, edge-case and ragged
;; inputs):
;;   f16: round to nearest even, saturating to ±65504 (±Infinity too), NaN → sign | 0x7e00;
;;        a normal half: (a − (112 << 23) + 0xfff + lsb) >> 13 on the magnitude bits a;
;;        a subnormal half (a < 2⁻¹⁴): the bits of f32(|x| + 0.5) − the bits of 0.5: the float32
;;        addition rounds |x| to the subnormal half spacing 2⁻²⁴, ties to even (0.5's ulp is 2⁻²⁴);
;;   bf16: (bits + 0x7fff + lsb) >> 16, saturating to ±0x7f7f (±Infinity too), NaN → top half | 0x40;
;;   f16 decode (HALF_TO_F32 of fp16.codec.ts): a normal half is the float32 with bits
;;        ((h & 0x7fff) << 13) + (112 << 23) (the exponent rebiased); a subnormal one its 10 bits
;;        as an integer times 2⁻²⁴ (no float32 subnormal is ever an operand, in either path: they
;;        are slow on x86); ±Infinity keeps its sign; NaN is 0x7fc00000, the NaN a Float32Array
;;        stores for JavaScript's NaN;
;;   bf16 decode: the bits shifted into the top half of a float32;
;;   check16: the index of the first value that is not finite (exponent bits all ones: 0x7c00 for
;;        halves, 0x7f80 for bfloat16), or -1;
;;   accumulate: acc[i] += w · f64(x[i]) for decoded float32 x, in float64, element by element (the
;;        owner's sum: the codecs' TypeScript `acc[i] += weight * value`).
;; Pointers are byte offsets into the imported memory.
;;
;; Regenerate the embedded bytes (half-simd.wasm.ts) after editing this file:
;;   node scripts/embed-wat.mjs libs/exchange/src/codecs/half-simd.wat HALF_SIMD_WASM_BASE64
(module
  (memory (import "env" "memory") 1)

  ;; dst[i] = half(src[i]) for n (a multiple of 8) float32 at src, 16-bit halves at dst.
  ;; (The per-lane code is written out twice, for the two halves of each step: V8 does not inline
  ;; a helper function here, and the calls made the loop ~1.5× slower.)
  (func (export "f16") (param $src i32) (param $n i32) (param $dst i32)
    (local $end i32) (local $v0 v128) (local $v1 v128) (local $h0 v128) (local $h1 v128) (local $a v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $v0 (v128.load (local.get $src)))
        (local.set $v1 (v128.load offset=16 (local.get $src)))
        ;; $h0 = four halves of the float32 bits in $v0: normal (and overflow, clamped to 0x7bff;
        ;; Infinity too), then subnormal and zero (a < 2⁻¹⁴), then NaN, then the sign.
        (local.set $a (v128.and (local.get $v0) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
        (local.set $h0 (i32x4.min_u
          (i32x4.shr_u
            (i32x4.add
              (i32x4.add (local.get $a) (v128.const i32x4 0xc8000fff 0xc8000fff 0xc8000fff 0xc8000fff))
              (v128.and (i32x4.shr_u (local.get $a) (i32.const 13)) (v128.const i32x4 1 1 1 1)))
            (i32.const 13))
          (v128.const i32x4 0x7bff 0x7bff 0x7bff 0x7bff)))
        (local.set $h0 (v128.bitselect
          (i32x4.sub
            (f32x4.add (local.get $a) (v128.const f32x4 0.5 0.5 0.5 0.5))
            (v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000))
          (local.get $h0)
          (i32x4.lt_s (local.get $a) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))))
        (local.set $h0 (v128.or
          (v128.bitselect
            (v128.const i32x4 0x7e00 0x7e00 0x7e00 0x7e00)
            (local.get $h0)
            (i32x4.gt_s (local.get $a) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
          (v128.and (i32x4.shr_u (local.get $v0) (i32.const 16)) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000))))
        ;; $h1 = four halves of the float32 bits in $v1: normal (and overflow, clamped to 0x7bff;
        ;; Infinity too), then subnormal and zero (a < 2⁻¹⁴), then NaN, then the sign.
        (local.set $a (v128.and (local.get $v1) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
        (local.set $h1 (i32x4.min_u
          (i32x4.shr_u
            (i32x4.add
              (i32x4.add (local.get $a) (v128.const i32x4 0xc8000fff 0xc8000fff 0xc8000fff 0xc8000fff))
              (v128.and (i32x4.shr_u (local.get $a) (i32.const 13)) (v128.const i32x4 1 1 1 1)))
            (i32.const 13))
          (v128.const i32x4 0x7bff 0x7bff 0x7bff 0x7bff)))
        (local.set $h1 (v128.bitselect
          (i32x4.sub
            (f32x4.add (local.get $a) (v128.const f32x4 0.5 0.5 0.5 0.5))
            (v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000))
          (local.get $h1)
          (i32x4.lt_s (local.get $a) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))))
        (local.set $h1 (v128.or
          (v128.bitselect
            (v128.const i32x4 0x7e00 0x7e00 0x7e00 0x7e00)
            (local.get $h1)
            (i32x4.gt_s (local.get $a) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
          (v128.and (i32x4.shr_u (local.get $v1) (i32.const 16)) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000))))
        (v128.store (local.get $dst) (i16x8.narrow_i32x4_u (local.get $h0) (local.get $h1)))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $l))))

  ;; dst[i] = bfloat16(src[i]) for n (a multiple of 8) float32 at src, 16-bit values at dst.
  ;; (The per-lane code is written out twice, for the two halves of each step: V8 does not inline
  ;; a helper function here, and the calls made the loop ~1.5× slower.)
  (func (export "bf16") (param $src i32) (param $n i32) (param $dst i32)
    (local $end i32) (local $v0 v128) (local $v1 v128) (local $h0 v128) (local $h1 v128) (local $a v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $v0 (v128.load (local.get $src)))
        (local.set $v1 (v128.load offset=16 (local.get $src)))
        ;; $h0 = four bfloat16 of the float32 bits in $v0: rounded; rounded into the exponent of
        ;; Infinity (or Infinity itself): the largest finite, signed; NaN stays NaN (quiet).
        (local.set $h0 (i32x4.shr_u
          (i32x4.add
            (i32x4.add (local.get $v0) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff))
            (v128.and (i32x4.shr_u (local.get $v0) (i32.const 16)) (v128.const i32x4 1 1 1 1)))
          (i32.const 16)))
        (local.set $h0 (v128.bitselect
          (v128.or (v128.and (local.get $h0) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (v128.const i32x4 0x7f7f 0x7f7f 0x7f7f 0x7f7f))
          (local.get $h0)
          (i32x4.eq (v128.and (local.get $h0) (v128.const i32x4 0x7f80 0x7f80 0x7f80 0x7f80)) (v128.const i32x4 0x7f80 0x7f80 0x7f80 0x7f80))))
        (local.set $h0 (v128.bitselect
          (v128.or (i32x4.shr_u (local.get $v0) (i32.const 16)) (v128.const i32x4 0x40 0x40 0x40 0x40))
          (local.get $h0)
          (i32x4.gt_s
            (v128.and (local.get $v0) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
            (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))))
        ;; $h1 = four bfloat16 of the float32 bits in $v1: rounded; rounded into the exponent of
        ;; Infinity (or Infinity itself): the largest finite, signed; NaN stays NaN (quiet).
        (local.set $h1 (i32x4.shr_u
          (i32x4.add
            (i32x4.add (local.get $v1) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff))
            (v128.and (i32x4.shr_u (local.get $v1) (i32.const 16)) (v128.const i32x4 1 1 1 1)))
          (i32.const 16)))
        (local.set $h1 (v128.bitselect
          (v128.or (v128.and (local.get $h1) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (v128.const i32x4 0x7f7f 0x7f7f 0x7f7f 0x7f7f))
          (local.get $h1)
          (i32x4.eq (v128.and (local.get $h1) (v128.const i32x4 0x7f80 0x7f80 0x7f80 0x7f80)) (v128.const i32x4 0x7f80 0x7f80 0x7f80 0x7f80))))
        (local.set $h1 (v128.bitselect
          (v128.or (i32x4.shr_u (local.get $v1) (i32.const 16)) (v128.const i32x4 0x40 0x40 0x40 0x40))
          (local.get $h1)
          (i32x4.gt_s
            (v128.and (local.get $v1) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
            (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))))
        (v128.store (local.get $dst) (i16x8.narrow_i32x4_u (local.get $h0) (local.get $h1)))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $l))))

  ;; dst[i] = float32 of the half src[i], for n (a multiple of 8) halves.
  (func (export "f16decode") (param $src i32) (param $n i32) (param $dst i32)
    (local $end i32) (local $v v128) (local $h v128) (local $em v128) (local $f v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 1))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $v (v128.load (local.get $src)))
        ;; Low four halves, then high four: the same code twice (no helper call, see above). The
        ;; compares and the conversion are signed (em < 2¹⁵): x86 has no unsigned ones for i32x4.
        (local.set $h (i32x4.extend_low_i16x8_u (local.get $v)))
        (local.set $em (v128.and (local.get $h) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)))
        (local.set $f (v128.bitselect
          (f32x4.mul (f32x4.convert_i32x4_s (local.get $em)) (v128.const f32x4 0x1p-24 0x1p-24 0x1p-24 0x1p-24))
          (i32x4.add (i32x4.shl (local.get $em) (i32.const 13)) (v128.const i32x4 0x38000000 0x38000000 0x38000000 0x38000000))
          (i32x4.lt_s (local.get $em) (v128.const i32x4 0x400 0x400 0x400 0x400))))
        (local.set $f (v128.or (local.get $f) (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16))))
        (local.set $f (v128.bitselect
          (v128.or (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
          (local.get $f)
          (i32x4.eq (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
        (local.set $f (v128.bitselect
          (v128.const i32x4 0x7fc00000 0x7fc00000 0x7fc00000 0x7fc00000)
          (local.get $f)
          (i32x4.gt_s (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
        (v128.store (local.get $dst) (local.get $f))
        (local.set $h (i32x4.extend_high_i16x8_u (local.get $v)))
        (local.set $em (v128.and (local.get $h) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)))
        (local.set $f (v128.bitselect
          (f32x4.mul (f32x4.convert_i32x4_s (local.get $em)) (v128.const f32x4 0x1p-24 0x1p-24 0x1p-24 0x1p-24))
          (i32x4.add (i32x4.shl (local.get $em) (i32.const 13)) (v128.const i32x4 0x38000000 0x38000000 0x38000000 0x38000000))
          (i32x4.lt_s (local.get $em) (v128.const i32x4 0x400 0x400 0x400 0x400))))
        (local.set $f (v128.or (local.get $f) (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16))))
        (local.set $f (v128.bitselect
          (v128.or (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
          (local.get $f)
          (i32x4.eq (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
        (local.set $f (v128.bitselect
          (v128.const i32x4 0x7fc00000 0x7fc00000 0x7fc00000 0x7fc00000)
          (local.get $f)
          (i32x4.gt_s (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
        (v128.store offset=16 (local.get $dst) (local.get $f))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (br $l))))

  ;; dst[i] = float32 of the bfloat16 src[i] (its bits << 16), for n (a multiple of 8) values.
  (func (export "bf16decode") (param $src i32) (param $n i32) (param $dst i32)
    (local $end i32) (local $v v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 1))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $v (v128.load (local.get $src)))
        (v128.store (local.get $dst) (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v)) (i32.const 16)))
        (v128.store offset=16 (local.get $dst) (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v)) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (br $l))))

  ;; The index of the first of n (a multiple of 8) 16-bit values at src whose bits under mask
  ;; are all ones (exp: 0x7c00 for halves, 0x7f80 for bfloat16: not finite), or -1.
  (func (export "check16") (param $src i32) (param $n i32) (param $exp i32) (result i32)
    (local $i i32) (local $k i32) (local $ve v128)
    (local.set $ve (i16x8.splat (local.get $exp)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (v128.any_true (i16x8.eq
              (v128.and (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))) (local.get $ve))
              (local.get $ve)))
          (then
            (local.set $k (local.get $i))
            (loop $f
              (if (i32.eq (i32.and (i32.load16_u (i32.add (local.get $src) (i32.shl (local.get $k) (i32.const 1)))) (local.get $exp)) (local.get $exp))
                (then (return (local.get $k))))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br $f))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $l)))
    (i32.const -1))
  ;; acc[i] += w · f64(x[i]) for n (a multiple of 4) float32 at x, float64 at acc.
  (func (export "accumulate") (param $x i32) (param $n i32) (param $acc i32) (param $w f64)
    (local $end i32) (local $vw v128) (local $v v128)
    (local.set $vw (f64x2.splat (local.get $w)))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $v (v128.load (local.get $x)))
        (v128.store (local.get $acc) (f64x2.add (v128.load (local.get $acc)) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (local.get $vw))))
        (v128.store offset=16 (local.get $acc) (f64x2.add (v128.load offset=16 (local.get $acc))
          (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))) (local.get $vw))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 32)))
        (br $l)))))
