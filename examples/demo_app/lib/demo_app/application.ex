defmodule DemoApp.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      DemoApp.Store,
      {DemoApp.Server, httpd_config()}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: DemoApp.Supervisor)
  end

  defp httpd_config do
    tmp = String.to_charlist(System.tmp_dir!())

    [
      port: port(),
      bind_address: {127, 0, 0, 1},
      server_name: ~c"demo_app",
      server_root: tmp,
      document_root: tmp,
      modules: [DemoApp.Router]
    ]
  end

  defp port do
    case Integer.parse(System.get_env("DEMO_APP_PORT", "4080")) do
      {port, ""} when port in 0..65535 -> port
      _ -> raise ArgumentError, "DEMO_APP_PORT must be a port number (0 picks a free one)"
    end
  end
end
