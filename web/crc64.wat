;; CRC-64/ECMA as OSS computes it (x-oss-hash-crc64ecma; "CRC-64/XZ" in catalogues: reflected,
;; polynomial 0x42F0E1EBA9EA3693, i.e. 0xC96C5795D7870F42 reflected; initial and final value all ones).
;; Slicing-by-16: sixteen 256-entry i64 tables at 0..32767 (Tk at k*2048), the bytes to digest from
;; 32768 on (the caller copies them there and grows the memory as it needs). web/crc64.js carries the
;; compiled module (base64, 0.6 KiB); rebuild it after an edit here with
;;   wat2wasm web/crc64.wat --output=- | base64 -w0
;; (tests/browser/test_files_crc.py checks that the two agree when wat2wasm is installed).
(module
  (memory (export "memory") 1)
  (func (export "init")
    (local $i i32) (local $j i32) (local $k i32) (local $c i64)
    ;; T0: the classic reflected table, one bit at a time
    (loop $t0
      (local.set $c (i64.extend_i32_u (local.get $i)))
      (local.set $j (i32.const 8))
      (loop $bit
        (local.set $c (i64.xor (i64.shr_u (local.get $c) (i64.const 1))
          (i64.and (i64.const 0xC96C5795D7870F42) (i64.sub (i64.const 0) (i64.and (local.get $c) (i64.const 1))))))
        (local.tee $j (i32.sub (local.get $j) (i32.const 1)))
        (br_if $bit))
      (i64.store (i32.shl (local.get $i) (i32.const 3)) (local.get $c))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $t0 (i32.lt_u (i32.const 256))))
    ;; Tk[i] = (Tk-1[i] >> 8) ^ T0[Tk-1[i] & 0xff]: the 15*256 entries after T0, in one run
    (local.set $k (i32.const 2048))
    (loop $tk
      (local.set $c (i64.load (i32.sub (local.get $k) (i32.const 2048))))
      (i64.store (local.get $k) (i64.xor (i64.shr_u (local.get $c) (i64.const 8))
        (i64.load (i32.shl (i32.wrap_i64 (i64.and (local.get $c) (i64.const 0xff))) (i32.const 3)))))
      (local.tee $k (i32.add (local.get $k) (i32.const 8)))
      (br_if $tk (i32.lt_u (i32.const 32768)))))

  ;; crc: the CRC so far (0 before the first byte); n bytes at 32768. Returns the CRC with them.
  (func (export "update") (param $crc i64) (param $n i32) (result i64)
    (local $p i32) (local $end i32) (local $a i64) (local $b i64)
    (local.set $crc (i64.xor (local.get $crc) (i64.const -1)))
    (local.set $p (i32.const 32768))
    (local.set $end (i32.add (i32.const 32768) (i32.and (local.get $n) (i32.const -16))))
    (block $done16
      (loop $sixteen
        (br_if $done16 (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a (i64.xor (local.get $crc) (i64.load (local.get $p))))
        (local.set $b (i64.load offset=8 (local.get $p)))
        (local.set $crc (i64.load offset=30720 (i32.shl (i32.and (i32.wrap_i64 (local.get $a)) (i32.const 255)) (i32.const 3))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=28672 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 8))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=26624 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 16))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=24576 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 24))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=22528 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 32))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=20480 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 40))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=18432 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 48))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=16384 (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 56))) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=14336 (i32.shl (i32.and (i32.wrap_i64 (local.get $b)) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=12288 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 8))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=10240 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 16))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=8192 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 24))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=6144 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 32))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=4096 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 40))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load offset=2048 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 48))) (i32.const 255)) (i32.const 3)))))
        (local.set $crc (i64.xor (local.get $crc) (i64.load (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 56))) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $sixteen)))
    (local.set $end (i32.add (i32.const 32768) (local.get $n)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $crc (i64.xor (i64.shr_u (local.get $crc) (i64.const 8))
          (i64.load (i32.shl (i32.and (i32.xor (i32.wrap_i64 (local.get $crc)) (i32.load8_u (local.get $p)))
            (i32.const 255)) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $one)))
    (i64.xor (local.get $crc) (i64.const -1))))
