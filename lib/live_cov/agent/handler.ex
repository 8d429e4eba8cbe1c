defmodule LiveCov.Agent.Handler do
  @moduledoc false
  # The `:httpd` callback module of the agent (`modules: [LiveCov.Agent.Handler]`).
  #
  # httpd calls `do/1` in its per-connection process with the parsed request. This module turns
  # it into a `LiveCov.Agent.Router` request, and the router's answer into httpd's
  # `{:proceed, [{:response, {:response, headers, body}}]}`. Anything that raises, throws or
  # exits while answering gives a 500 with a JSON error body: a crashing handler never takes
  # more than its own request with it.

  require Logger

  alias LiveCov.Agent.Router

  @config_key :live_cov_agent

  @doc false
  def config_key, do: @config_key

  @doc "httpd's module callback."
  def unquote(:do)(mod_data) do
    # This process (httpd's, one per connection) serves the agent only: its work, sending
    # large reports included, yields to the application's normal-priority processes.
    Process.flag(:priority, :low)
    # Every route is GET or POST: HEAD gets a 405 (without a body).
    LiveCov.HTTPD.serve(mod_data, @config_key, &Router.handle/2, &internal/3)
  end

  defp internal(kind, reason, stack) do
    Logger.error(
      "LiveCov agent: request handler crashed: " <> Exception.format_banner(kind, reason, stack)
    )

    Router.error_response(
      {:internal_error, "the agent failed to answer this request; see the node's log"}
    )
  end
end
