"""The oracles the tests and the benchmarks share: the real darknet built and run (darknet_reference,
darknet_steps), its detector commands read back (darknet_commands), datasets written for it
(darknet_dataset), a cfg compared with it (cfg_parity), and the cfg fuzzer (cfg_fuzz).

Benchmarks import these from here, never anything under tests/; tests import them from here too."""
