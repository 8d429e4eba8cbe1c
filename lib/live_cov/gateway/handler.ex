defmodule LiveCov.Gateway.Handler do
  @moduledoc """
  The `:httpd` callback module of the gateway: turns httpd's request record into
  `%{method:, path:, query:, headers:, body:}` for `LiveCov.Gateway.Router` and its answer
  into httpd's response. A crash while answering gives a 500 (JSON for `/api/` paths, a
  page otherwise) and affects nothing but the request.
  """

  require Record
  require Logger

  alias LiveCov.Gateway.Router

  Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

  @config_key :live_cov_gateway

  @doc false
  def config_key, do: @config_key

  @doc "httpd's module callback."
  def unquote(:do)(mod_data) do
    data = mod(mod_data, :data)

    if :proplists.get_value(:response, data) != :undefined or
         :proplists.get_value(:status, data) != :undefined do
      {:proceed, data}
    else
      {status, headers, body} = answer(mod_data)
      body = if mod(mod_data, :method) == ~c"HEAD", do: "", else: body
      {:proceed, [{:response, {:response, response_headers(status, headers, body), body}}]}
    end
  end

  defp answer(mod_data) do
    config = :httpd_util.lookup(mod(mod_data, :config_db), @config_key)
    Router.handle(request(mod_data), config)
  rescue
    e -> internal(Exception.format(:error, e, __STACKTRACE__))
  catch
    kind, reason -> internal(Exception.format(kind, reason, __STACKTRACE__))
  end

  defp request(mod_data) do
    uri = to_string(mod(mod_data, :request_uri))
    [path | rest] = String.split(uri, "?", parts: 2)

    %{
      method: to_string(mod(mod_data, :method)),
      path: path,
      query: List.first(rest) || "",
      headers: for({k, v} <- mod(mod_data, :parsed_header), do: {to_bin(k), to_bin(v)}),
      body: to_bin(mod(mod_data, :entity_body))
    }
  end

  defp to_bin(nil), do: ""
  defp to_bin(:undefined), do: ""
  defp to_bin(v) when is_binary(v), do: v
  defp to_bin(v) when is_list(v), do: :erlang.iolist_to_binary(v)
  defp to_bin(v), do: to_string(v)

  defp internal(text) do
    Logger.error("LiveCov gateway: request handler crashed: " <> text)
    Router.error({:internal_error, "the gateway failed to answer this request; see its log"})
  end

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
end
