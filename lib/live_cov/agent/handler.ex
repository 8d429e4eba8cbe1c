defmodule LiveCov.Agent.Handler do
  @moduledoc """
  The `:httpd` callback module of the agent (`modules: [LiveCov.Agent.Handler]`).

  httpd calls `do/1` in its per-connection process with the parsed request. This module turns
  it into a `LiveCov.Agent.Router` request, and the router's answer into httpd's
  `{:proceed, [{:response, {:response, headers, body}}]}`. Anything that raises, throws or
  exits while answering gives a 500 with a JSON error body: a crashing handler never takes
  more than its own request with it.
  """

  require Record
  require Logger

  alias LiveCov.Agent.Router

  Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

  @config_key :live_cov_agent

  @doc false
  def config_key, do: @config_key

  @doc "httpd's module callback."
  def unquote(:do)(mod_data) do
    # This process (httpd's, one per connection) serves the agent only: its work, sending
    # large reports included, yields to the application's normal-priority processes.
    Process.flag(:priority, :low)
    data = mod(mod_data, :data)

    # Another module already answered (none is configured before us, but stay correct).
    if :proplists.get_value(:response, data) != :undefined or
         :proplists.get_value(:status, data) != :undefined do
      {:proceed, data}
    else
      {status, headers, body} = answer(mod_data)
      # A HEAD answer has no body (every route is GET or POST: HEAD gets a 405).
      body = if mod(mod_data, :method) == ~c"HEAD", do: "", else: body
      {:proceed, [{:response, {:response, response_headers(status, headers, body), body}}]}
    end
  end

  defp answer(mod_data) do
    config = :httpd_util.lookup(mod(mod_data, :config_db), @config_key)
    Router.handle(request(mod_data), config)
  rescue
    e -> internal(e, __STACKTRACE__)
  catch
    kind, reason -> internal({kind, reason}, __STACKTRACE__)
  end

  defp request(mod_data) do
    %{
      method: to_string(mod(mod_data, :method)),
      uri: to_string(mod(mod_data, :request_uri)),
      headers: for({k, v} <- mod(mod_data, :parsed_header), do: {to_bin(k), to_bin(v)}),
      body: body(mod(mod_data, :entity_body))
    }
  end

  defp body(nil), do: ""
  defp body(:undefined), do: ""
  defp body(b) when is_binary(b), do: b
  defp body(l) when is_list(l), do: :erlang.iolist_to_binary(l)

  defp to_bin(v) when is_binary(v), do: v
  defp to_bin(v) when is_list(v), do: :erlang.iolist_to_binary(v)
  defp to_bin(v), do: to_string(v)

  defp internal(error, stack) do
    Logger.error(
      "LiveCov agent: request handler crashed: " <>
        Exception.format_banner(kind_of(error), reason_of(error), stack)
    )

    Router.error_response(
      {:internal_error, "the agent failed to answer this request; see the node's log"}
    )
  end

  defp kind_of({kind, _}) when kind in [:throw, :exit, :error], do: kind
  defp kind_of(_), do: :error

  defp reason_of({kind, reason}) when kind in [:throw, :exit, :error], do: reason
  defp reason_of(e), do: e

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
end
