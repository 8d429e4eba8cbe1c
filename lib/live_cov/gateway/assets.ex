defmodule LiveCov.Gateway.Assets do
  @moduledoc false
  # The dashboard's CSS and JS (`priv/gateway/`), embedded at compile time so the gateway
  # serves them from any installation; no CDN.

  @dir Path.expand("../../../priv/gateway", __DIR__)
  @files %{
    "gateway.css" => "text/css; charset=utf-8",
    "gateway.js" => "text/javascript; charset=utf-8"
  }

  for {name, _} <- @files do
    @external_resource Path.join(@dir, name)
  end

  @contents Map.new(@files, fn {name, type} ->
              {name, {type, File.read!(Path.join(@dir, name))}}
            end)

  @doc "An asset by file name: `{:ok, 200, content_type, body}` or not found."
  def get(name) do
    case Map.fetch(@contents, name) do
      {:ok, {type, body}} -> {:ok, 200, type, body}
      :error -> {:error, {:not_found, "no asset #{inspect(name)}"}}
    end
  end

  @versions Map.new(@contents, fn {name, {_, body}} ->
              {name, :crypto.hash(:md5, body) |> binary_part(0, 4) |> Base.encode16(case: :lower)}
            end)

  @doc "A short fingerprint of an asset, for cache-busting URLs."
  def version(name), do: Map.get(@versions, name, "0")
end
