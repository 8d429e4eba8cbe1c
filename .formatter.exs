# test/fixtures is left out on purpose: fixture line numbers are part of the expected results.
[
  inputs: [
    "{mix,.formatter}.exs",
    "{config,lib,bench}/**/*.{ex,exs}",
    "test/*.exs",
    "test/live_cov/**/*.{ex,exs}",
    "test/support/**/*.{ex,exs}"
  ]
]
