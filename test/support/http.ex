defmodule LiveCov.Test.HTTP do
  @moduledoc false
  # The HTTP client of the agent and gateway tests (:httpc).

  @doc """
  Sends a `method` request to `url`; returns `{status, %{header => value}, body}` (header
  names lowercase, as :httpc gives them).

  Options: `headers:` `[{name, value}]` (strings); for POST and PUT, `body:` (default "") and
  `type:` its content type (default "application/json"); `timeout:` ms (default 60 000).
  """
  def request(method, url, opts \\ []) do
    headers =
      for {k, v} <- Keyword.get(opts, :headers, []),
          do: {String.to_charlist(k), String.to_charlist(v)}

    target = String.to_charlist(url)

    request =
      if method in [:post, :put],
        do:
          {target, headers, String.to_charlist(Keyword.get(opts, :type, "application/json")),
           Keyword.get(opts, :body) || ""},
        else: {target, headers}

    timeout = Keyword.get(opts, :timeout, 60_000)

    {:ok, {{_, status, _}, resp_headers, body}} =
      :httpc.request(method, request, [timeout: timeout], body_format: :binary)

    {status, Map.new(resp_headers, fn {k, v} -> {to_string(k), to_string(v)} end), body}
  end

  @doc "The `authorization` header of a bearer token."
  def bearer(token), do: {"authorization", "Bearer " <> token}
end
