//! Sans-IO call state machines and the calls table: `handle_*(now, …)` in, `poll_*` out.
