defmodule LiveCov.Gateway do
  @moduledoc """
  The LiveCov gateway: collects coverage from many instrumented nodes, keeps it safe across
  restarts, measures test runs, publishes reports and serves the Cover Center dashboard.

      {:ok, info} = LiveCov.Gateway.start("gateway.exs")   # or a keyword list / Config
      info.url   #=> "http://127.0.0.1:9570"
      {:ok, run} = LiveCov.Gateway.start_run(name: "nightly", reset: true)
      # ... drive traffic through the services ...
      {:ok, run} = LiveCov.Gateway.finish_run(run.id)     # final pull, results, publishers
      LiveCov.Gateway.stop()

  From a shell: `mix live_cov.gateway --config gateway.exs` (or `scripts/gateway.sh`).
  The configuration is described in `LiveCov.Gateway.Config`; the HTTP routes in
  `LiveCov.Gateway.Router`.

  ## How data is kept

  Every `interval` the gateway pulls each source in parallel: an agent's `GET /snapshot`
  or a node's `LiveCov.snapshot/0` over `:erpc`, each within `timeout`. A source that fails
  keeps its last good data and is retried after `backoff * 2^(failures-1)` ms (at most
  `max_backoff`). A snapshot is cumulative, so the latest one replaces the previous one; when
  the source restarted or was reset, the previous life's last snapshot is kept in a retired
  total first (`LiveCov.Gateway.Source`). A service's data is the merge of its sources'
  totals (`LiveCov.Snapshot.merge/2`: builds of a module stay apart). After each pull that
  changed something, the state is written atomically to `data_dir`
  (`LiveCov.Gateway.Store`) and loaded again on start.

  ## Supervision

  `LiveCov.Gateway.Supervisor` (started by `start/1`, not linked to the caller) runs
  `LiveCov.Gateway.Server` (pulls, runs, state) and `LiveCov.Gateway.Http` (the httpd
  instance). A crashed server restarts from the persisted state.
  """

  alias LiveCov.Gateway.{Api, Config, Http, Runs, Server, View}

  @doc """
  Starts the gateway from a config file path, a keyword list or a `LiveCov.Gateway.Config`.
  Returns `{:ok, %{url:, data_dir:, sources:}}` or `{:error, {kind, message}}`
  (`:invalid_gateway_config`, `:already_started`, `:listen_failed`, `:distribution_failed`).
  """
  @spec start(Path.t() | keyword | Config.t()) :: {:ok, map} | {:error, {atom, String.t()}}
  def start(config) do
    with {:ok, _} <- Application.ensure_all_started(:live_cov),
         {:ok, _} <- Application.ensure_all_started(:inets),
         {:ok, config} <- config(config),
         :ok <- not_running(),
         :ok <- distribution(config) do
      children = [{Server, config}, {Http, config}]

      case start_unlinked(children, strategy: :one_for_one, name: LiveCov.Gateway.Supervisor) do
        {:ok, _pid} ->
          {:ok,
           %{
             url: Http.url(),
             data_dir: config.data_dir,
             sources: Enum.map(config.sources, & &1.name)
           }}

        {:error, reason} ->
          {:error, start_error(reason)}
      end
    end
  end

  # The supervisor must outlive the caller (an iex shell, an :erpc call, a Mix task) and a
  # failed start must not kill the caller with an exit signal: it is started from a
  # short-lived process that traps exits, then unlinked.
  defp start_unlinked(children, opts) do
    caller = self()
    tag = make_ref()

    {_pid, mon} =
      spawn_monitor(fn ->
        Process.flag(:trap_exit, true)
        result = Supervisor.start_link(children, opts)
        with {:ok, sup} <- result, do: Process.unlink(sup)
        send(caller, {tag, result})
      end)

    receive do
      {^tag, result} ->
        Process.demonitor(mon, [:flush])
        result

      {:DOWN, ^mon, _, _, reason} ->
        {:error, reason}
    end
  end

  defp config(%Config{} = c), do: {:ok, c}
  defp config(path) when is_binary(path), do: Config.load(path)
  defp config(opts), do: Config.new(opts)

  defp not_running do
    if running?(),
      do:
        {:error,
         {:already_started,
          "the LiveCov gateway already runs at #{url()}; call LiveCov.Gateway.stop() first"}},
      else: :ok
  end

  defp start_error({:shutdown, {:failed_to_start_child, _, {:shutdown, {kind, msg}}}})
       when is_atom(kind),
       do: {kind, msg}

  defp start_error({:shutdown, {:failed_to_start_child, child, reason}}),
    do:
      {:start_failed,
       "gateway part #{inspect(child)} did not start: #{inspect(reason, limit: 10)}"}

  defp start_error(other),
    do: {:start_failed, "the gateway did not start: #{inspect(other, limit: 10)}"}

  defp distribution(%Config{distribution: nil}), do: :ok

  defp distribution(%Config{distribution: %{name: name, cookie: cookie}}) do
    started =
      if Node.alive?() do
        :ok
      else
        if exe = System.find_executable("epmd"), do: System.cmd(exe, ["-daemon"])
        [_, host] = name |> Atom.to_string() |> String.split("@", parts: 2) |> pad_host()
        mode = if String.contains?(host, "."), do: :longnames, else: :shortnames

        case Node.start(name, mode) do
          {:ok, _} ->
            :ok

          {:error, reason} ->
            {:error,
             {:distribution_failed, "cannot start distribution as #{name}: #{inspect(reason)}"}}
        end
      end

    with :ok <- started do
      if cookie, do: Node.set_cookie(cookie)
      :ok
    end
  end

  defp pad_host([name]), do: [name, ""]
  defp pad_host(parts), do: parts

  @doc "Stops the gateway (its state is already persisted)."
  @spec stop() :: :ok | {:error, {atom, String.t()}}
  def stop do
    case Process.whereis(LiveCov.Gateway.Supervisor) do
      nil ->
        {:error, {:not_running, "the LiveCov gateway is not running"}}

      pid ->
        try do
          Supervisor.stop(pid, :normal, 30_000)
        catch
          :exit, _ -> :ok
        end
    end
  end

  @doc "Is the gateway running?"
  @spec running?() :: boolean
  def running?, do: Process.whereis(LiveCov.Gateway.Supervisor) != nil

  @doc "The gateway's base URL, or nil."
  @spec url() :: String.t() | nil
  def url, do: if(running?(), do: Http.url())

  @doc "Pulls every source now: `%{source => :ok | {:error, message}}`."
  @spec pull() :: map
  def pull, do: Server.pull()

  @doc """
  Starts a test run. Options: `:name`, `:reset` (reset the sources first), `:services`
  (default all), `:labels` (a map of strings). `{:ok, run}` or an error.
  """
  @spec start_run(keyword) :: {:ok, map} | {:error, {atom, String.t()}}
  def start_run(opts \\ []) do
    body = for {k, v} <- opts, into: %{}, do: {Atom.to_string(k), v}

    with %{services: services} <-
           View.state() || {:error, {:unavailable, "the gateway is not running"}},
         {:ok, params} <- Runs.params(body, services),
         do: Server.start_run(params)
  end

  @doc "Finishes a run: final pull, results, publishers. `{:ok, run}` (with `publish` results)."
  @spec finish_run(String.t()) :: {:ok, map} | {:error, {atom, String.t()}}
  def finish_run(id) do
    Api.finish_and_publish(id)
  end

  @doc "The state the dashboard shows (sources, runs, services), or nil."
  @spec status() :: map | nil
  def status, do: View.state()
end
