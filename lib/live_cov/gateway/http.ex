defmodule LiveCov.Gateway.Http do
  @moduledoc false
  # Owns the gateway's `:inets` httpd instance (stand-alone, linked here): the JSON API and the
  # dashboard (`LiveCov.Gateway.Handler`). Stopping this process closes the listener.
  use GenServer
  require Logger

  alias LiveCov.Gateway.{Config, Handler}

  @doc false
  def start_link(%Config{} = config),
    do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @doc "The base URL the gateway serves, or nil."
  @spec url() :: String.t() | nil
  def url do
    GenServer.call(__MODULE__, :url)
  catch
    :exit, _ -> nil
  end

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    case start_httpd(config) do
      {:ok, pid, port} ->
        url = LiveCov.HTTPD.url(config.bind, port)
        Logger.info("LiveCov gateway serving #{url}")
        {:ok, %{httpd: pid, url: url}}

      {:error, reason} ->
        {:stop,
         {:shutdown,
          {:listen_failed,
           "the gateway cannot listen on #{:inet.ntoa(config.bind)}:#{config.port}: #{inspect(reason)}"}}}
    end
  end

  @impl true
  def handle_call(:url, _from, state), do: {:reply, state.url, state}

  @impl true
  def handle_info({:EXIT, pid, reason}, %{httpd: pid} = state),
    do: {:stop, {:httpd_down, reason}, %{state | httpd: nil}}

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, %{httpd: pid}) when is_pid(pid) do
    :inets.stop(:stand_alone, pid)
  catch
    :exit, _ -> :ok
  end

  def terminate(_reason, _state), do: :ok

  defp start_httpd(config) do
    root = String.to_charlist(System.tmp_dir() || "/")

    httpd_config = [
      {Handler.config_key(), %{token: config.token}},
      port: config.port,
      server_name: ~c"live_cov_gateway",
      server_root: root,
      document_root: root,
      modules: [Handler],
      server_tokens: :none,
      max_body_size: 1_048_576,
      max_clients: 200,
      keep_alive: true,
      keep_alive_timeout: 30,
      max_header_size: 16_384,
      max_uri_size: 8_192
    ]

    LiveCov.HTTPD.start(config.bind, httpd_config)
  end
end
