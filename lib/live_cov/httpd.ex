defmodule LiveCov.HTTPD do
  @moduledoc false
  # The `:inets` httpd plumbing shared by LiveCov's two HTTP servers, the agent
  # (`LiveCov.Agent.Server`, `LiveCov.Agent.Handler`) and the gateway (`LiveCov.Gateway.Http`,
  # `LiveCov.Gateway.Handler`): starting a stand-alone httpd instance and finding its port, and
  # turning httpd's request record into a map and a `{status, headers, body}` answer into
  # httpd's response.

  require Record

  Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

  @typedoc "A request as the routers take it (header names as httpd gives them: lowercase)."
  @type request :: %{
          method: String.t(),
          uri: String.t(),
          headers: [{String.t(), String.t()}],
          body: binary
        }

  @typedoc "An answer: status, `[{name, value}]` headers (strings), body."
  @type response :: {pos_integer, [{String.t(), String.t()}], binary}

  @doc """
  Answers httpd's `do/1` callback.

  `handle` gets the request and the value stored under `config_key` in httpd's config store
  (see `start/2`). Anything it raises, throws or exits with is given to `on_crash` as
  `(kind, reason, stacktrace)`, which answers instead (a 500): a crashing handler never takes
  more than its own request with it. A HEAD answer has no body. When another httpd module
  already answered, that answer is kept.
  """
  @spec serve(
          tuple,
          atom,
          (request, term -> response),
          (:error | :exit | :throw, term, Exception.stacktrace() -> response)
        ) :: {:proceed, list}
  def serve(mod_data, config_key, handle, on_crash) do
    data = mod(mod_data, :data)

    if :proplists.get_value(:response, data) != :undefined or
         :proplists.get_value(:status, data) != :undefined do
      {:proceed, data}
    else
      {status, headers, body} = answer(mod_data, config_key, handle, on_crash)
      body = if mod(mod_data, :method) == ~c"HEAD", do: "", else: body
      {:proceed, [{:response, {:response, response_headers(status, headers, body), body}}]}
    end
  end

  defp answer(mod_data, config_key, handle, on_crash) do
    config = :httpd_util.lookup(mod(mod_data, :config_db), config_key)
    handle.(request(mod_data), config)
  rescue
    e -> on_crash.(:error, e, __STACKTRACE__)
  catch
    kind, reason -> on_crash.(kind, reason, __STACKTRACE__)
  end

  defp request(mod_data) do
    %{
      method: to_string(mod(mod_data, :method)),
      uri: to_string(mod(mod_data, :request_uri)),
      headers: for({k, v} <- mod(mod_data, :parsed_header), do: {to_bin(k), to_bin(v)}),
      body: to_bin(mod(mod_data, :entity_body))
    }
  end

  defp to_bin(nil), do: ""
  defp to_bin(:undefined), do: ""
  defp to_bin(v) when is_binary(v), do: v
  defp to_bin(v) when is_list(v), do: :erlang.iolist_to_binary(v)
  defp to_bin(v), do: to_string(v)

  # httpd wants header names and values as charlists.
  defp response_headers(status, headers, body) do
    [
      {:code, status},
      {:content_length, Integer.to_charlist(byte_size(body))},
      {~c"cache-control", ~c"no-store"},
      {~c"x-content-type-options", ~c"nosniff"}
      | Enum.map(headers, fn
          {"content-type", v} -> {:content_type, to_charlist(v)}
          {k, v} -> {to_charlist(k), to_charlist(v)}
        end)
    ]
  end

  @doc """
  Starts a stand-alone httpd instance (linked to the caller) with `httpd_config` plus
  `bind_address: bind` and the matching `ipfamily`. Returns `{:ok, pid, port}`, `port` being
  the one it listens on (the actual one when the configured port is 0), or httpd's
  `{:error, reason}`.
  """
  @spec start(:inet.ip_address(), keyword) :: {:ok, pid, :inet.port_number()} | {:error, term}
  def start(bind, httpd_config) do
    config =
      httpd_config ++
        [bind_address: bind, ipfamily: if(tuple_size(bind) == 8, do: :inet6, else: :inet)]

    case :inets.start(:httpd, config, :stand_alone) do
      {:ok, pid} ->
        # A stand-alone httpd is not in inets' service list (no :httpd.info/2): the actual
        # port (needed with port 0) is in the id of its instance supervisor.
        port =
          Enum.find_value(Supervisor.which_children(pid), Keyword.get(config, :port), fn
            {{:httpd_instance_sup, _addr, p, _profile}, _, _, _} when is_integer(p) -> p
            _ -> nil
          end)

        {:ok, pid, port}

      {:error, reason} ->
        {:error, reason}
    end
  end

  @doc "The base URL of a server listening on `bind`:`port` (IPv6 addresses in brackets)."
  @spec url(:inet.ip_address(), :inet.port_number()) :: String.t()
  def url(bind, port) do
    host = bind |> :inet.ntoa() |> to_string()
    host = if tuple_size(bind) == 8, do: "[#{host}]", else: host
    "http://#{host}:#{port}"
  end
end
