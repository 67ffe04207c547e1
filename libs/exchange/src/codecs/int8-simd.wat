;; int8 blockwise-absmax kernels in WebAssembly SIMD (v128), for int8.codec.ts.
;;
;; Every function computes exactly what the scalar TypeScript in int8.codec.ts computes, bit for
;; bit (the codec tests compare the two on random, edge-case and ragged inputs):
;;   quantise:    scale = f32(f64(absmax) / 127), q = roundTiesToEven(clamp(f64(x) · (1 / f64(scale)), ±127)),
;;                q = 0 in a block whose scale is zero or not finite;
;;   dequantise:  out = f32(q · scale);
;;   accumulate:  acc += w · f64(f32(q · scale)), in float64, element by element;
;;   mean:        out = f32(acc / total) (the owner's mean, round-exchange.ts' meanOf), and whether
;;                any result is not finite;
;;   sumSquares:  total + Σ over blocks, in order, of (f64(scale) · f64(scale)) · Σ q² (the block's
;;                Σ q² exact: integers), the clipped mean's squared norm (clipping.ts).
;; Pointers are byte offsets into the imported memory; n elements in blocks of B.
;;
;; Regenerate the embedded bytes (int8-simd.wasm.ts) after editing this file:
;;   node scripts/embed-wat.mjs libs/exchange/src/codecs/int8-simd.wat INT8_SIMD_WASM_BASE64
;; (it runs wat2wasm from the npm package `wabt`, fetched by npx, and writes int8-simd.wasm.ts).
(module
  (memory (import "env" "memory") 1)

  ;; Largest |x| of the block as integer bits: for non-negative floats the bit patterns order like
  ;; the values and every NaN sorts above +Infinity, so a block holding NaN gets a NaN scale.
  (func $absmaxBits (param $p i32) (param $end i32) (result i32)
    (local $m v128) (local $mx i32) (local $a i32)
    (local.set $m (v128.const i32x4 0 0 0 0))
    (block $d4
      (loop $l4
        (br_if $d4 (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $end)))
        (local.set $m (i32x4.max_s (local.get $m) (v128.and (v128.load (local.get $p)) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))))
        (local.set $m (i32x4.max_s (local.get $m) (v128.and (v128.load offset=16 (local.get $p)) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))))
        (local.set $m (i32x4.max_s (local.get $m) (v128.and (v128.load offset=32 (local.get $p)) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))))
        (local.set $m (i32x4.max_s (local.get $m) (v128.and (v128.load offset=48 (local.get $p)) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $l4)))
    (block $d1
      (loop $l1
        (br_if $d1 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
        (local.set $m (i32x4.max_s (local.get $m) (v128.and (v128.load (local.get $p)) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l1)))
    ;; Horizontal maximum of the four lanes.
    (local.set $m (i32x4.max_s (local.get $m) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $m) (local.get $m))))
    (local.set $m (i32x4.max_s (local.get $m) (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $m) (local.get $m))))
    (local.set $mx (i32x4.extract_lane 0 (local.get $m)))
    (block $dt
      (loop $lt
        (br_if $dt (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a (i32.and (i32.load (local.get $p)) (i32.const 0x7fffffff)))
        (local.set $mx (select (local.get $a) (local.get $mx) (i32.gt_s (local.get $a) (local.get $mx))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $lt)))
    (local.get $mx))

  ;; scales[b] and q[i] for n float32 at src.
  (func (export "quantise") (param $src i32) (param $n i32) (param $B i32) (param $scales i32) (param $q i32)
    (local $lo i32) (local $hi i32) (local $p i32) (local $end i32) (local $o i32)
    (local $scale f32) (local $inv f64) (local $vinv v128) (local $v v128)
    (local $magic v128)
    ;; 1.5·2⁵²: y + magic rounds y (|y| < 127.5) to an integer, ties to even, and leaves it as
    ;; two's complement in the low 32 bits of the float64 (JS: y + ROUND − ROUND).
    (local.set $magic (f64x2.splat (f64.const 6755399441055744)))
    ;; Pass 1: every block's scale. Done apart from the values so that the blocks' divisions do
    ;; not wait on each other's absmax loops (each block's absmax → scale → 1/scale was one serial
    ;; chain of two float64 divisions before its values could start).
    (local.set $o (local.get $scales))
    (block $sdone
      (loop $sblocks
        (br_if $sdone (i32.ge_u (local.get $lo) (local.get $n)))
        (local.set $hi (select (local.get $n) (i32.add (local.get $lo) (local.get $B))
          (i32.gt_u (i32.add (local.get $lo) (local.get $B)) (local.get $n))))
        (f32.store (local.get $o) (f32.demote_f64 (f64.div
          (f64.promote_f32 (f32.reinterpret_i32 (call $absmaxBits
            (i32.add (local.get $src) (i32.shl (local.get $lo) (i32.const 2)))
            (i32.add (local.get $src) (i32.shl (local.get $hi) (i32.const 2))))))
          (f64.const 127))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $lo (local.get $hi))
        (br $sblocks)))
    ;; Pass 2: the values, block by block.
    (local.set $lo (i32.const 0))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $lo) (local.get $n)))
        (local.set $hi (select (local.get $n) (i32.add (local.get $lo) (local.get $B))
          (i32.gt_u (i32.add (local.get $lo) (local.get $B)) (local.get $n))))
        (local.set $p (i32.add (local.get $src) (i32.shl (local.get $lo) (i32.const 2))))
        (local.set $end (i32.add (local.get $src) (i32.shl (local.get $hi) (i32.const 2))))
        (local.set $scale (f32.load (local.get $scales)))
        (local.set $o (i32.add (local.get $q) (local.get $lo)))
        (local.set $inv (f64.div (f64.const 1) (f64.promote_f32 (local.get $scale))))
        (if (i32.and (f32.ge (local.get $scale) (f32.const 0x1p-126)) (f32.lt (local.get $scale) (f32.const inf)))
          (then
            ;; A normal scale is absmax/127 within 2⁻²⁴, so every |x · inv| < 127.5.
            (local.set $vinv (f64x2.splat (local.get $inv)))
            (block $d16
              (loop $l16
                (br_if $d16 (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $end)))
                (v128.store (local.get $o)
                  (i8x16.narrow_i16x8_s
                    (i16x8.narrow_i32x4_s
                      (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (local.tee $v (v128.load (local.get $p)))) (local.get $vinv)) (local.get $magic))
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))) (local.get $vinv)) (local.get $magic)))
                      (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (local.tee $v (v128.load offset=16 (local.get $p)))) (local.get $vinv)) (local.get $magic))
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))) (local.get $vinv)) (local.get $magic))))
                    (i16x8.narrow_i32x4_s
                      (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (local.tee $v (v128.load offset=32 (local.get $p)))) (local.get $vinv)) (local.get $magic))
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))) (local.get $vinv)) (local.get $magic)))
                      (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (local.tee $v (v128.load offset=48 (local.get $p)))) (local.get $vinv)) (local.get $magic))
                      (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))) (local.get $vinv)) (local.get $magic))))))
                (local.set $p (i32.add (local.get $p) (i32.const 64)))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $l16)))
            (block $dt
              (loop $lt
                (br_if $dt (i32.ge_u (local.get $p) (local.get $end)))
                (i32.store8 (local.get $o) (i32.trunc_f64_s (f64.nearest
                  (f64.mul (f64.promote_f32 (f32.load (local.get $p))) (local.get $inv)))))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (local.set $o (i32.add (local.get $o) (i32.const 1)))
                (br $lt))))
          (else (if (i32.and (f32.gt (local.get $scale) (f32.const 0)) (f32.lt (local.get $scale) (f32.const inf)))
            (then
              ;; A subnormal scale is imprecise: quotients are clamped to ±127.
              (block $ds
                (loop $ls
                  (br_if $ds (i32.ge_u (local.get $p) (local.get $end)))
                  (i32.store8 (local.get $o) (i32.trunc_f64_s (f64.nearest (f64.min (f64.max
                    (f64.mul (f64.promote_f32 (f32.load (local.get $p))) (local.get $inv)) (f64.const -127)) (f64.const 127)))))
                  (local.set $p (i32.add (local.get $p) (i32.const 4)))
                  (local.set $o (i32.add (local.get $o) (i32.const 1)))
                  (br $ls))))
            (else
              ;; A zero block sends zeros; a non-finite scale (NaN or ±Infinity in the block) is
              ;; rejected by receivers, and its values are zeros too.
              (memory.fill (local.get $o) (i32.const 0) (i32.sub (local.get $hi) (local.get $lo)))))))
        (local.set $scales (i32.add (local.get $scales) (i32.const 4)))
        (local.set $lo (local.get $hi))
        (br $blocks))))

  ;; out[i] = f32(q[i] · scale of its block).
  (func (export "dequantise") (param $scales i32) (param $q i32) (param $n i32) (param $B i32) (param $out i32)
    (local $lo i32) (local $hi i32) (local $p i32) (local $end i32) (local $o i32)
    (local $s f32) (local $vs v128) (local $v v128) (local $h v128)
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $lo) (local.get $n)))
        (local.set $hi (select (local.get $n) (i32.add (local.get $lo) (local.get $B))
          (i32.gt_u (i32.add (local.get $lo) (local.get $B)) (local.get $n))))
        (local.set $s (f32.load (local.get $scales)))
        (local.set $vs (f32x4.splat (local.get $s)))
        (local.set $p (i32.add (local.get $q) (local.get $lo)))
        (local.set $end (i32.add (local.get $q) (local.get $hi)))
        (local.set $o (i32.add (local.get $out) (i32.shl (local.get $lo) (i32.const 2))))
        (block $d16
          (loop $l16
            (br_if $d16 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $v (v128.load (local.get $p)))
            (local.set $h (i16x8.extend_low_i8x16_s (local.get $v)))
            (v128.store (local.get $o) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $vs)))
            (v128.store offset=16 (local.get $o) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $vs)))
            (local.set $h (i16x8.extend_high_i8x16_s (local.get $v)))
            (v128.store offset=32 (local.get $o) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $vs)))
            (v128.store offset=48 (local.get $o) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $vs)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $o (i32.add (local.get $o) (i32.const 64)))
            (br $l16)))
        (block $dt
          (loop $lt
            (br_if $dt (i32.ge_u (local.get $p) (local.get $end)))
            (f32.store (local.get $o) (f32.mul (f32.convert_i32_s (i32.load8_s (local.get $p))) (local.get $s)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $o (i32.add (local.get $o) (i32.const 4)))
            (br $lt)))
        (local.set $scales (i32.add (local.get $scales) (i32.const 4)))
        (local.set $lo (local.get $hi))
        (br $blocks))))

  ;; acc[i] += w · f64(f32(q[i] · scale of its block)) (float64 acc).
  (func (export "accumulate") (param $scales i32) (param $q i32) (param $n i32) (param $B i32) (param $acc i32) (param $w f64)
    (local $lo i32) (local $hi i32) (local $p i32) (local $end i32) (local $a i32)
    (local $s f32) (local $vs v128) (local $vw v128) (local $v v128) (local $h v128) (local $d v128)
    (local.set $vw (f64x2.splat (local.get $w)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $lo) (local.get $n)))
        (local.set $hi (select (local.get $n) (i32.add (local.get $lo) (local.get $B))
          (i32.gt_u (i32.add (local.get $lo) (local.get $B)) (local.get $n))))
        (local.set $s (f32.load (local.get $scales)))
        (local.set $vs (f32x4.splat (local.get $s)))
        (local.set $p (i32.add (local.get $q) (local.get $lo)))
        (local.set $end (i32.add (local.get $q) (local.get $hi)))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $lo) (i32.const 3))))
        (block $d16
          (loop $l16
            (br_if $d16 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $v (v128.load (local.get $p)))
            (local.set $h (i16x8.extend_low_i8x16_s (local.get $v)))
            (local.set $d (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $vs)))
            (v128.store offset=0 (local.get $a) (f64x2.add (v128.load offset=0 (local.get $a)) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $d)) (local.get $vw))))
            (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a))
              (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $d) (local.get $d))) (local.get $vw))))
            (local.set $d (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $vs)))
            (v128.store offset=32 (local.get $a) (f64x2.add (v128.load offset=32 (local.get $a)) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $d)) (local.get $vw))))
            (v128.store offset=48 (local.get $a) (f64x2.add (v128.load offset=48 (local.get $a))
              (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $d) (local.get $d))) (local.get $vw))))
            (local.set $h (i16x8.extend_high_i8x16_s (local.get $v)))
            (local.set $d (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $vs)))
            (v128.store offset=64 (local.get $a) (f64x2.add (v128.load offset=64 (local.get $a)) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $d)) (local.get $vw))))
            (v128.store offset=80 (local.get $a) (f64x2.add (v128.load offset=80 (local.get $a))
              (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $d) (local.get $d))) (local.get $vw))))
            (local.set $d (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $vs)))
            (v128.store offset=96 (local.get $a) (f64x2.add (v128.load offset=96 (local.get $a)) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $d)) (local.get $vw))))
            (v128.store offset=112 (local.get $a) (f64x2.add (v128.load offset=112 (local.get $a))
              (f64x2.mul (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $d) (local.get $d))) (local.get $vw))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $a (i32.add (local.get $a) (i32.const 128)))
            (br $l16)))
        (block $dt
          (loop $lt
            (br_if $dt (i32.ge_u (local.get $p) (local.get $end)))
            (f64.store (local.get $a) (f64.add (f64.load (local.get $a))
              (f64.mul (local.get $w) (f64.promote_f32 (f32.mul (f32.convert_i32_s (i32.load8_s (local.get $p))) (local.get $s))))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $a (i32.add (local.get $a) (i32.const 8)))
            (br $lt)))
        (local.set $scales (i32.add (local.get $scales) (i32.const 4)))
        (local.set $lo (local.get $hi))
        (br $blocks))))

  ;; out[i] = f32(acc[i] / total) for n float64 at acc (two divisions per instruction); returns 1
  ;; when any result is NaN or ±Infinity (m − m ≠ 0), else 0.
  (func (export "mean") (param $acc i32) (param $n i32) (param $total f64) (param $out i32) (result i32)
    (local $a i32) (local $end i32) (local $o i32) (local $vt v128) (local $m v128) (local $bad v128)
    (local $x f32) (local $badS i32)
    (local.set $vt (f64x2.splat (local.get $total)))
    (local.set $bad (v128.const i32x4 0 0 0 0))
    (local.set $a (local.get $acc))
    (local.set $o (local.get $out))
    (local.set $end (i32.add (local.get $acc) (i32.shl (local.get $n) (i32.const 3))))
    (block $d8
      (loop $l8
        (br_if $d8 (i32.gt_u (i32.add (local.get $a) (i32.const 64)) (local.get $end)))
        (local.set $m (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.div (v128.load (local.get $a)) (local.get $vt)))
          (f32x4.demote_f64x2_zero (f64x2.div (v128.load offset=16 (local.get $a)) (local.get $vt)))))
        (v128.store (local.get $o) (local.get $m))
        (local.set $bad (v128.or (local.get $bad) (f32x4.ne (f32x4.sub (local.get $m) (local.get $m)) (v128.const f32x4 0 0 0 0))))
        (local.set $m (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.div (v128.load offset=32 (local.get $a)) (local.get $vt)))
          (f32x4.demote_f64x2_zero (f64x2.div (v128.load offset=48 (local.get $a)) (local.get $vt)))))
        (v128.store offset=16 (local.get $o) (local.get $m))
        (local.set $bad (v128.or (local.get $bad) (f32x4.ne (f32x4.sub (local.get $m) (local.get $m)) (v128.const f32x4 0 0 0 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 64)))
        (local.set $o (i32.add (local.get $o) (i32.const 32)))
        (br $l8)))
    (local.set $badS (v128.any_true (local.get $bad)))
    (block $dt
      (loop $lt
        (br_if $dt (i32.ge_u (local.get $a) (local.get $end)))
        (local.set $x (f32.demote_f64 (f64.div (f64.load (local.get $a)) (local.get $total))))
        (f32.store (local.get $o) (local.get $x))
        (local.set $badS (i32.or (local.get $badS) (f32.ne (f32.sub (local.get $x) (local.get $x)) (f32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 8)))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $lt)))
    (local.get $badS))
;; total + Σ_b (s_b · s_b) · Σ_{i in b} q_i², blocks in order (Int8Codec#sumSquares).
  (func (export "sumSquares") (param $scales i32) (param $q i32) (param $n i32) (param $B i32) (param $total f64) (result f64)
    (local $lo i32) (local $hi i32) (local $p i32) (local $end i32) (local $stop i32)
    (local $v v128) (local $h v128) (local $acc v128) (local $sum f64) (local $t i32) (local $s f64)
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $lo) (local.get $n)))
        (local.set $hi (select (local.get $n) (i32.add (local.get $lo) (local.get $B))
          (i32.gt_u (i32.add (local.get $lo) (local.get $B)) (local.get $n))))
        (local.set $p (i32.add (local.get $q) (local.get $lo)))
        (local.set $end (i32.add (local.get $q) (local.get $hi)))
        (local.set $sum (f64.const 0))
        ;; 16 values per step into four i32 lanes (each gains at most 4 · 127² per step), flushed
        ;; into the float64 block sum every 4096 steps (lanes ≤ 2.7e8, their sum ≤ 1.1e9 < 2³¹); every
        ;; partial sum is an integer below 2⁵³, so the block sum is exact.
        (block $d16
          (loop $l16
            (br_if $d16 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $stop (select (local.get $end) (i32.add (local.get $p) (i32.const 65536))
              (i32.gt_u (i32.add (local.get $p) (i32.const 65536)) (local.get $end))))
            (local.set $acc (v128.const i32x4 0 0 0 0))
            (block $dc
              (loop $lc
                (br_if $dc (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $stop)))
                (local.set $v (v128.load (local.get $p)))
                (local.set $h (i16x8.extend_low_i8x16_s (local.get $v)))
                (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s (local.get $h) (local.get $h))))
                (local.set $h (i16x8.extend_high_i8x16_s (local.get $v)))
                (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s (local.get $h) (local.get $h))))
                (local.set $p (i32.add (local.get $p) (i32.const 16)))
                (br $lc)))
            (local.set $sum (f64.add (local.get $sum) (f64.convert_i32_s (i32.add
              (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
              (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))))
            (br $l16)))
        (block $dt
          (loop $lt
            (br_if $dt (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $t (i32.load8_s (local.get $p)))
            (local.set $sum (f64.add (local.get $sum) (f64.convert_i32_s (i32.mul (local.get $t) (local.get $t)))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $lt)))
        (local.set $s (f64.promote_f32 (f32.load (local.get $scales))))
        (local.set $total (f64.add (local.get $total) (f64.mul (f64.mul (local.get $s) (local.get $s)) (local.get $sum))))
        (local.set $scales (i32.add (local.get $scales) (i32.const 4)))
        (local.set $lo (local.get $hi))
        (br $blocks)))
    (local.get $total))
)
