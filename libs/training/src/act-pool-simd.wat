;; The backward pass of act → 2×2/2 max pooling (heap-kernels.ts' actPoolGrad, pool 2) in
;; WebAssembly SIMD, for C % 4 == 0, run on tfjs-backend-wasm's own memory (imported).
;;
;; It computes exactly what the TypeScript loop computes, bit for bit (heap-kernels.test.ts
;; compares the two): per window and channel, g = dy where y > 0 as an int32 (positive, not NaN),
;; else +0; each of the four z equal to y (bit equality) gets g, the others +0; acc[ch] (float64)
;; += ((v0 + v1) + v2) + v3 in float64. dz is NHWC, or channel-planar [C, N·H·W] when `planar`.
;; Pointers are byte offsets into the memory; acc holds C float64s.
;;
;; Regenerate the embedded bytes (act-pool-simd.wasm.ts) after editing this file:
;;   node scripts/embed-wat.mjs libs/training/src/act-pool-simd.wat ACT_POOL_SIMD_WASM_BASE64
;; (it runs wat2wasm from the npm package `wabt`, fetched by npx, and writes act-pool-simd.wasm.ts).
(module
  (memory (import "env" "memory") 1)
  ;; act+pool backward for 2x2/2 max pooling, NHWC z [n,h,w,c], y/dy [n,h/2,w/2,c], c % 4 == 0.
  (func (export "actPoolGrad2")
    (param $dy i32) (param $z i32) (param $y i32) (param $dz i32) (param $acc i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32) (param $relu i32) (param $planar i32)
    (local $ho i32) (local $wo i32) (local $b i32) (local $oy i32) (local $ox i32) (local $ch i32)
    (local $o i32) (local $p0 i32) (local $r0 i32) (local $r1 i32) (local $c4 i32) (local $rowb i32)
    (local $P4 i32) (local $d i32) (local $w4 i32)
    (local $Y v128) (local $G v128) (local $keep v128) (local $V0 v128) (local $V1 v128) (local $V2 v128) (local $V3 v128)
    (local $a i32) (local $s v128)
    (local.set $ho (i32.shr_u (local.get $h) (i32.const 1)))
    (local.set $wo (i32.shr_u (local.get $w) (i32.const 1)))
    (local.set $c4 (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowb (i32.mul (local.get $w) (local.get $c4)))
    (local.set $P4 (i32.shl (i32.mul (i32.mul (local.get $n) (local.get $h)) (local.get $w)) (i32.const 2)))
    (local.set $w4 (i32.shl (local.get $w) (i32.const 2)))
    (local.set $keep (v128.const i32x4 -1 -1 -1 -1))
    (local.set $b (i32.const 0))
    (block $db (loop $lb
      (br_if $db (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $doy (loop $loy
        (br_if $doy (i32.ge_u (local.get $oy) (local.get $ho)))
        (local.set $ox (i32.const 0))
        (block $dox (loop $lox
          (br_if $dox (i32.ge_u (local.get $ox) (local.get $wo)))
          ;; o (element index) and p0 (pixel index)
          (local.set $o (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $ho)) (local.get $oy)) (local.get $wo)) (local.get $ox)) (local.get $c)))
          (local.set $p0 (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $oy) (i32.const 1))) (local.get $w)) (i32.shl (local.get $ox) (i32.const 1))))
          (local.set $r0 (i32.shl (i32.mul (local.get $p0) (local.get $c)) (i32.const 2)))
          (local.set $r1 (i32.add (local.get $r0) (local.get $rowb)))
          (local.set $ch (i32.const 0))
          (block $dch (loop $lch
            (br_if $dch (i32.ge_u (local.get $ch) (local.get $c)))
            (local.set $Y (v128.load (i32.add (local.get $y) (i32.shl (i32.add (local.get $o) (local.get $ch)) (i32.const 2)))))
            (local.set $G (v128.load (i32.add (local.get $dy) (i32.shl (i32.add (local.get $o) (local.get $ch)) (i32.const 2)))))
            (if (local.get $relu) (then
              (local.set $G (v128.and (local.get $G)
                (v128.and (i32x4.gt_s (local.get $Y) (v128.const i32x4 0 0 0 0))
                          (i32x4.lt_s (local.get $Y) (v128.const i32x4 0x7f800001 0x7f800001 0x7f800001 0x7f800001)))))))
            (local.set $V0 (v128.and (local.get $G) (i32x4.eq (local.get $Y) (v128.load (i32.add (local.get $z) (i32.add (local.get $r0) (i32.shl (local.get $ch) (i32.const 2))))))))
            (local.set $V1 (v128.and (local.get $G) (i32x4.eq (local.get $Y) (v128.load (i32.add (local.get $z) (i32.add (i32.add (local.get $r0) (local.get $c4)) (i32.shl (local.get $ch) (i32.const 2))))))))
            (local.set $V2 (v128.and (local.get $G) (i32x4.eq (local.get $Y) (v128.load (i32.add (local.get $z) (i32.add (local.get $r1) (i32.shl (local.get $ch) (i32.const 2))))))))
            (local.set $V3 (v128.and (local.get $G) (i32x4.eq (local.get $Y) (v128.load (i32.add (local.get $z) (i32.add (i32.add (local.get $r1) (local.get $c4)) (i32.shl (local.get $ch) (i32.const 2))))))))
            (if (local.get $planar)
              (then
                ;; channel ch+k plane at dz + (ch+k)*P*4, pixel p0: 4 lanes x 4 positions
                (local.set $d (i32.add (local.get $dz) (i32.add (i32.mul (local.get $ch) (local.get $P4)) (i32.shl (local.get $p0) (i32.const 2)))))
                (f32.store (local.get $d) (f32x4.extract_lane 0 (local.get $V0)))
                (f32.store offset=4 (local.get $d) (f32x4.extract_lane 0 (local.get $V1)))
                (f32.store (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 0 (local.get $V2)))
                (f32.store offset=4 (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 0 (local.get $V3)))
                (local.set $d (i32.add (local.get $d) (local.get $P4)))
                (f32.store (local.get $d) (f32x4.extract_lane 1 (local.get $V0)))
                (f32.store offset=4 (local.get $d) (f32x4.extract_lane 1 (local.get $V1)))
                (f32.store (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 1 (local.get $V2)))
                (f32.store offset=4 (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 1 (local.get $V3)))
                (local.set $d (i32.add (local.get $d) (local.get $P4)))
                (f32.store (local.get $d) (f32x4.extract_lane 2 (local.get $V0)))
                (f32.store offset=4 (local.get $d) (f32x4.extract_lane 2 (local.get $V1)))
                (f32.store (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 2 (local.get $V2)))
                (f32.store offset=4 (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 2 (local.get $V3)))
                (local.set $d (i32.add (local.get $d) (local.get $P4)))
                (f32.store (local.get $d) (f32x4.extract_lane 3 (local.get $V0)))
                (f32.store offset=4 (local.get $d) (f32x4.extract_lane 3 (local.get $V1)))
                (f32.store (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 3 (local.get $V2)))
                (f32.store offset=4 (i32.add (local.get $d) (local.get $w4)) (f32x4.extract_lane 3 (local.get $V3))))
              (else
                (v128.store (i32.add (local.get $dz) (i32.add (local.get $r0) (i32.shl (local.get $ch) (i32.const 2)))) (local.get $V0))
                (v128.store (i32.add (local.get $dz) (i32.add (i32.add (local.get $r0) (local.get $c4)) (i32.shl (local.get $ch) (i32.const 2)))) (local.get $V1))
                (v128.store (i32.add (local.get $dz) (i32.add (local.get $r1) (i32.shl (local.get $ch) (i32.const 2)))) (local.get $V2))
                (v128.store (i32.add (local.get $dz) (i32.add (i32.add (local.get $r1) (local.get $c4)) (i32.shl (local.get $ch) (i32.const 2)))) (local.get $V3))))
            ;; acc[ch..ch+1] += ((v0 + v1) + v2) + v3 in float64, lanes 0,1 then 2,3
            (local.set $s (f64x2.add (f64x2.add (f64x2.add (f64x2.promote_low_f32x4 (local.get $V0)) (f64x2.promote_low_f32x4 (local.get $V1))) (f64x2.promote_low_f32x4 (local.get $V2))) (f64x2.promote_low_f32x4 (local.get $V3))))
            (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $ch) (i32.const 3))))
            (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (local.get $s)))
            (local.set $s (f64x2.add (f64x2.add (f64x2.add
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $V0) (local.get $V0)))
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $V1) (local.get $V1))))
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $V2) (local.get $V2))))
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $V3) (local.get $V3)))))
            (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (local.get $s)))
            (local.set $ch (i32.add (local.get $ch) (i32.const 4)))
            (br $lch)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $lox)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $loy)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $lb)))
  )
)
