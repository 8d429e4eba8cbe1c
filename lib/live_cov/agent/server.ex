defmodule LiveCov.Agent.Server do
  @moduledoc false
  # Owns one running agent: the `:inets` httpd instance (started stand-alone, linked here) and
  # its `LiveCov.Agent.Flight`. Runs under `LiveCov.Agent.Supervisor`; stopping it stops the
  # listener. Use `LiveCov.Agent` rather than this module.
  use GenServer
  require Logger

  alias LiveCov.Agent.{Config, Flight, Handler}

  @doc false
  def start_link(%Config{} = config),
    do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @doc false
  def child_spec(%Config{} = config) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [config]}, restart: :transient}
  end

  @doc "The running agent's settings and address, or nil."
  @spec info() :: map | nil
  def info do
    case Process.whereis(__MODULE__) do
      nil -> nil
      pid -> GenServer.call(pid, :info)
    end
  catch
    :exit, _ -> nil
  end

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    with {:ok, flight} <- Flight.start_link(max_concurrent: config.max_concurrent, name: Flight),
         {:ok, httpd, port} <- start_httpd(config, flight) do
      url = LiveCov.HTTPD.url(config.bind, port)
      Logger.info("LiveCov agent listening on #{url} (auth: #{config.auth})")
      {:ok, %{config: config, httpd: httpd, flight: flight, port: port, url: url}}
    else
      {:error, {kind, message}} when is_atom(kind) and is_binary(message) ->
        {:stop, {:shutdown, {kind, message}}}

      {:error, other} ->
        {:stop, {:shutdown, {:agent_start_failed, "could not start: #{inspect(other)}"}}}
    end
  end

  @impl true
  def handle_call(:info, _from, state) do
    c = state.config

    info = %{
      url: state.url,
      bind: c.bind |> :inet.ntoa() |> to_string(),
      port: state.port,
      auth: c.auth,
      max_body_bytes: c.max_body_bytes,
      max_clients: c.max_clients,
      max_concurrent: c.max_concurrent,
      request_timeout: c.request_timeout,
      keep_alive_timeout: c.keep_alive_timeout,
      report_opts: c.report_opts
    }

    {:reply, info, state}
  end

  @impl true
  def handle_info({:EXIT, pid, reason}, %{httpd: pid} = state) do
    Logger.error("LiveCov agent: the HTTP server stopped: #{inspect(reason)}")
    {:stop, {:httpd_down, reason}, %{state | httpd: nil}}
  end

  def handle_info({:EXIT, pid, reason}, %{flight: pid} = state) do
    {:stop, {:flight_down, reason}, %{state | flight: nil}}
  end

  def handle_info({:EXIT, _pid, _reason}, state), do: {:noreply, state}
  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    if state.httpd, do: catch_exit(fn -> :inets.stop(:stand_alone, state.httpd) end)
    if state.flight, do: catch_exit(fn -> GenServer.stop(state.flight, :shutdown, 5_000) end)
    :ok
  end

  defp catch_exit(fun) do
    fun.()
  catch
    :exit, _ -> :ok
  end

  defp start_httpd(config, _flight) do
    root = server_root()

    # The handler reads the agent settings from httpd's own config store.
    httpd_config = [
      {Handler.config_key(), config},
      port: config.port,
      server_name: ~c"live_cov_agent",
      server_root: root,
      document_root: root,
      modules: [Handler],
      server_tokens: :none,
      max_body_size: config.max_body_bytes,
      max_clients: config.max_clients,
      keep_alive: true,
      keep_alive_timeout: config.keep_alive_timeout,
      max_keep_alive_request: 10_000,
      max_header_size: 16_384,
      max_uri_size: 8_192
    ]

    with {:error, reason} <- LiveCov.HTTPD.start(config.bind, httpd_config),
         do: {:error, {:listen_failed, listen_message(config, reason)}}
  end

  defp listen_message(config, reason) do
    where = "#{:inet.ntoa(config.bind)}:#{config.port}"

    text = inspect(reason)

    why =
      cond do
        String.contains?(text, "eaddrinuse") ->
          "the port is in use; choose another port or stop what listens there"

        String.contains?(text, "eaddrnotavail") ->
          "the address is not on this host; bind to one of its addresses or 127.0.0.1"

        String.contains?(text, "eacces") ->
          "permission denied; use a port above 1023"

        true ->
          text
      end

    "the agent cannot listen on #{where}: #{why}"
  end

  # httpd needs existing directories; nothing is served from them (no mod_get).
  defp server_root do
    dir =
      case :code.priv_dir(:live_cov) do
        {:error, _} -> System.tmp_dir() || "/"
        d -> List.to_string(d)
      end

    String.to_charlist(if File.dir?(dir), do: dir, else: "/")
  end
end
