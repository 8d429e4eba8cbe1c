defmodule LiveCov.Gateway.Handler do
  @moduledoc false
  # The `:httpd` callback module of the gateway: turns httpd's request record into
  # `%{method:, path:, query:, headers:, body:}` for `LiveCov.Gateway.Router` and its answer
  # into httpd's response. A crash while answering gives a 500 (JSON for `/api/` paths, a
  # page otherwise) and affects nothing but the request.

  require Logger

  alias LiveCov.Gateway.Router

  @config_key :live_cov_gateway

  @doc false
  def config_key, do: @config_key

  @doc "httpd's module callback."
  def unquote(:do)(mod_data),
    do: LiveCov.HTTPD.serve(mod_data, @config_key, &handle/2, &internal/3)

  defp handle(%{uri: uri} = req, config) do
    [path | rest] = String.split(uri, "?", parts: 2)

    req
    |> Map.delete(:uri)
    |> Map.merge(%{path: path, query: List.first(rest) || ""})
    |> Router.handle(config)
  end

  defp internal(kind, reason, stack) do
    Logger.error(
      "LiveCov gateway: request handler crashed: " <> Exception.format(kind, reason, stack)
    )

    Router.error({:internal_error, "the gateway failed to answer this request; see its log"})
  end
end
