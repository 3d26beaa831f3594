"""What the trainer, the exporter and the agent share: the one contract.

The trainer and the exporter import only this package from jenga_edge
(tests/test_layout.py holds them to it). Everything here is torch-free and
light: errors, the feature schema, task kinds, the bundle format, typed
configs, sha256 and the CLI's error handling.
"""
