;; Core module for the workerd JS+Wasm peer: hello() copies the greeting to offset 0 and returns
;; its length (the copy keeps a little work inside Wasm on every request).
(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "hello from workerd+wasm\n")
  (func (export "hello") (result i32)
    (memory.copy (i32.const 0) (i32.const 1024) (i32.const 24))
    (i32.const 24)))
