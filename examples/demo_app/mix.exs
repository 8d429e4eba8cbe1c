defmodule DemoApp.MixProject do
  use Mix.Project

  # A small HTTP key-value and calculator service on OTP's :inets httpd, used by LiveCov's
  # demo (examples/demo.exs) and its release scenario test. No hex dependencies.
  def project do
    [
      app: :demo_app,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: [{:live_cov, path: "../.."}],
      releases: [
        demo_app: [
          include_executables_for: [:unix],
          # LiveCov rebuilds modules from their debug info (the "Dbgi" chunk) and finds their
          # source files through the compile info ("CInf"); a release strips both by default.
          strip_beams: [keep: ["Dbgi", "CInf"]]
        ]
      ]
    ]
  end

  def application do
    [
      extra_applications: [:logger, :inets],
      mod: {DemoApp.Application, []}
    ]
  end
end
