# Peer nodes (later suites) need distribution; start it once for the whole run.
ExUnit.start(capture_log: true)
