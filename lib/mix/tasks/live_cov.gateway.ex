defmodule Mix.Tasks.LiveCov.Gateway do
  @shortdoc "Runs the LiveCov gateway (pulls agents, test runs, Cover Center dashboard)"

  @moduledoc """
  Runs the LiveCov gateway until the VM is stopped (Ctrl-C twice, or SIGTERM).

      mix live_cov.gateway --config gateway.exs
      mix live_cov.gateway --config gateway.exs --port 9571

  `--config` is a `gateway.exs` file (see `LiveCov.Gateway.Config` and
  `examples/gateway.exs`). `--port` overrides its `port`. `scripts/gateway.sh` wraps this
  task (`MIX_ENV=prod`) for use outside a development shell.

  An escript is not offered: LiveCov's NIF (`priv/native/live_cov_nif.so`) cannot be
  loaded from inside an escript archive.
  """

  use Mix.Task

  @switches [config: :string, port: :integer, wait: :boolean]

  @impl true
  def run(args) do
    {opts, rest, invalid} =
      OptionParser.parse(args, strict: @switches, aliases: [c: :config, p: :port])

    cond do
      invalid != [] or rest != [] ->
        Mix.raise(
          "unexpected arguments #{inspect(Enum.map(invalid, &elem(&1, 0)) ++ rest)}; usage: mix live_cov.gateway --config gateway.exs [--port N]"
        )

      opts[:config] == nil ->
        Mix.raise(
          "give the configuration file: mix live_cov.gateway --config gateway.exs (see examples/gateway.exs)"
        )

      true ->
        if Mix.Project.get(), do: Mix.Task.run("compile")
        config = load!(opts)

        case LiveCov.Gateway.start(config) do
          {:ok, info} ->
            Mix.shell().info(
              "LiveCov gateway: #{info.url} (data in #{info.data_dir}; #{length(info.sources)} source(s))"
            )

            if Keyword.get(opts, :wait, true), do: wait_forever()
            :ok

          {:error, {kind, message}} ->
            Mix.raise("the gateway did not start (#{kind}): #{message}")
        end
    end
  end

  defp load!(opts) do
    case LiveCov.Gateway.Config.load(opts[:config]) do
      {:ok, config} -> if opts[:port], do: %{config | port: opts[:port]}, else: config
      {:error, {_kind, message}} -> Mix.raise(message)
    end
  end

  defp wait_forever do
    ref = Process.monitor(LiveCov.Gateway.Supervisor)

    receive do
      {:DOWN, ^ref, _, _, reason} -> Mix.raise("the gateway stopped: #{inspect(reason)}")
    end
  end
end
