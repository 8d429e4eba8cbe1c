defmodule DemoApp do
  @moduledoc """
  A small HTTP service: a key-value store and a calculator.

      GET    /health                  {"status":"ok"}
      GET    /kv                      {"keys":[...]}
      GET    /kv/KEY                  {"key":"KEY","value":"..."}   (404 when absent)
      PUT    /kv/KEY   (body: value)  201 created, 200 replaced
      DELETE /kv/KEY                  200, 404 when absent
      GET    /calc/OP?a=INT&b=INT     {"result":N}   OP: add sub mul div pow

  The port comes from `DEMO_APP_PORT` (default 4080; `0` picks a free port, see `port/0`).
  """

  @doc "The TCP port the HTTP server listens on."
  @spec port() :: :inet.port_number()
  def port, do: DemoApp.Server.port()
end
