;; The smallest useful WAGI function: a WASI preview 1 command that writes a CGI response
;; ("Content-Type: text/plain", an empty line, a body) to stdout with one fd_write.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param $fd i32) (param $iovs i32) (param $iovs_len i32) (param $nwritten i32) (result i32)))
  (memory (export "memory") 1 1)
  ;; The response, 41 bytes, at offset 16.
  (data (i32.const 16) "Content-Type: text/plain\n\nhello from wat\n")
  (func (export "_start")
    ;; One iovec at offset 0: { buf = 16, buf_len = 41 }; the written count goes to offset 8.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 41))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
