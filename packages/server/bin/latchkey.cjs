#!/usr/bin/env -S node --max-semi-space-size=8 --no-parallel-scavenge
// The `latchkey` command: the bundled CLI with libuv's thread pool sized to the cores.
//
// Argon2id runs on that pool. libuv's default of four threads runs four 19 MiB hashes at
// once on a two-core machine, where they evict each other from the caches (the same
// logins cost ~10 % more CPU: bench/RESULTS.md, "Thread pool"), and leaves cores unused
// on a machine with more than four. libuv reads UV_THREADPOOL_SIZE once, when the pool
// starts, and Node's ES module loader starts it before an ES module's first line runs:
// hence this CommonJS file, which sets the size and then loads the bundle.
"use strict";
process.env.UV_THREADPOOL_SIZE ||= String(require("node:os").availableParallelism());
import("../dist/bundle/latchkey.mjs");
