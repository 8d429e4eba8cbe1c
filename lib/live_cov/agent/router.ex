defmodule LiveCov.Agent.Router do
  @moduledoc false
  # Routing, authentication and error mapping of the agent's HTTP API (see the "Agent HTTP
  # API" section of docs/ARCHITECTURE.md and `LiveCov.Agent`).
  #
  # `handle/2` takes `%{method:, uri:, headers: [{lowercase_name, value}], body:}` and returns
  # `{status, [{header, value}], body_binary}`. Every route except `GET /health` is checked
  # for the bearer token first, before the path is even looked at: an unauthenticated request
  # learns nothing and changes nothing. Errors are
  # `{"error": {"kind": "...", "message": "..."}}`.

  alias LiveCov.Agent.{Auth, Config, Routes}

  @routes %{
    ["health"] => ["GET"],
    ["status"] => ["GET"],
    ["instrument"] => ["POST"],
    ["stop"] => ["POST"],
    ["coverage"] => ["GET"],
    ["report", :format] => ["GET"],
    ["snapshot"] => ["GET"],
    ["reset"] => ["POST"],
    ["metrics"] => ["GET"]
  }

  @type response :: {100..599, [{String.t(), String.t()}], binary}

  @doc "Answers one request (see the module doc)."
  @spec handle(map, Config.t()) :: response
  def handle(req, %Config{} = config) do
    parsed = parse_path(req.uri)

    # The token is checked before anything else about the request is looked at.
    with :ok <- authenticate(req, parsed, config),
         {:ok, path} <- parsed,
         {:ok, route, params} <- match(req.method, path),
         :ok <- check_body_size(req.body, config),
         {:ok, query} <- parse_query(req.uri) do
      request = %{params: params, query: query, body: req.body, gzip: gzip?(req.headers)}

      case Routes.call(route, request, config) do
        {:ok, status, content_type, body} ->
          {status, [{"content-type", content_type}], IO.iodata_to_binary(body)}

        {:ok, status, content_type, body, headers} ->
          {status, [{"content-type", content_type} | headers], IO.iodata_to_binary(body)}

        {:error, {kind, message}} ->
          error_response({kind, message})
      end
    else
      {:error, {:unauthorized, _} = reason} ->
        error_response(reason, [{"www-authenticate", ~s(Bearer realm="live_cov")}])

      {:error, {:method_not_allowed, _, allowed}} ->
        error_response(
          {:method_not_allowed,
           "#{req.method} is not allowed on #{path_of(req.uri)}; use #{Enum.join(allowed, ", ")}"},
          [{"allow", Enum.join(allowed, ", ")}]
        )

      {:error, reason} ->
        error_response(reason)
    end
  end

  @doc "The HTTP status of an error kind (unknown kinds are 500)."
  @spec status_of(atom) :: 100..599
  def status_of(kind), do: LiveCov.Errors.status(kind)

  @doc "A JSON error response for `{kind, message}`."
  @spec error_response({atom, String.t()}, [{String.t(), String.t()}]) :: response
  def error_response({kind, message}, headers \\ []) do
    body = LiveCov.JSON.encode!(%{error: %{kind: kind, message: safe_text(message)}})
    {status_of(kind), [{"content-type", "application/json"} | headers], body}
  end

  @doc "The routes: `%{path_pattern => [method]}` (`:format` matches one segment)."
  def routes, do: @routes

  defp authenticate(%{method: "GET"}, {:ok, ["health"]}, _config), do: :ok
  defp authenticate(req, _parsed, config), do: Auth.check(req.headers, config)

  defp match(method, path) do
    case Enum.find(@routes, fn {pattern, _} -> match_path(pattern, path) end) do
      nil ->
        {:error,
         {:not_found,
          "no route #{path_of_segments(path)}; routes are " <>
            Enum.map_join(Enum.sort(Map.keys(@routes)), ", ", &path_of_segments/1)}}

      {pattern, methods} ->
        if method in methods,
          do: {:ok, pattern, params(pattern, path)},
          else: {:error, {:method_not_allowed, method, methods}}
    end
  end

  defp match_path(pattern, path) when length(pattern) != length(path), do: false

  defp match_path(pattern, path) do
    Enum.zip(pattern, path) |> Enum.all?(fn {p, s} -> is_atom(p) or p == s end)
  end

  defp params(pattern, path) do
    for {p, s} <- Enum.zip(pattern, path), is_atom(p), into: %{}, do: {p, s}
  end

  defp check_body_size(body, config) do
    if byte_size(body) > config.max_body_bytes,
      do:
        {:error,
         {:body_too_large,
          "request body of #{byte_size(body)} bytes is over the limit of " <>
            "#{config.max_body_bytes} bytes (agent option max_body_bytes)"}},
      else: :ok
  end

  defp parse_path(uri) do
    path = path_of(uri)

    segments =
      path
      |> String.split("/")
      |> Enum.reject(&(&1 == ""))
      |> Enum.map(&URI.decode/1)

    {:ok, segments}
  rescue
    _ -> {:error, {:bad_request, "malformed percent-encoding in the request path"}}
  end

  defp parse_query(uri) do
    case String.split(uri, "?", parts: 2) do
      [_] ->
        {:ok, %{}}

      [_, query] ->
        query
        |> URI.query_decoder()
        |> Enum.reduce_while({:ok, %{}}, fn {k, v}, {:ok, acc} ->
          if Map.has_key?(acc, k),
            do: {:halt, {:error, {:invalid_parameter, "query parameter #{k} is given twice"}}},
            else: {:cont, {:ok, Map.put(acc, k, v)}}
        end)
    end
  rescue
    _ -> {:error, {:bad_request, "malformed query string; use key=value pairs, percent-encoded"}}
  end

  # Accept-Encoding names gzip with a non-zero quality.
  defp gzip?(headers) do
    Enum.any?(headers, fn {name, value} ->
      String.downcase(name, :ascii) == "accept-encoding" and
        value
        |> String.split(",")
        |> Enum.any?(fn coding ->
          case coding |> String.split(";") |> Enum.map(&String.trim/1) do
            [c | params] when c in ["gzip", "x-gzip", "*"] ->
              not Enum.any?(params, &(&1 in ["q=0", "q=0.0", "q=0.00", "q=0.000"]))

            _ ->
              false
          end
        end)
    end)
  end

  defp path_of(uri), do: uri |> String.split(["?", "#"], parts: 2) |> hd()

  defp path_of_segments(segments) do
    "/" <> Enum.map_join(segments, "/", fn s -> if is_atom(s), do: ":#{s}", else: s end)
  end

  # Error messages can echo user input: keep them valid UTF-8 and bounded.
  defp safe_text(message) do
    message = if String.valid?(message), do: message, else: inspect(message)
    if String.length(message) > 2000, do: String.slice(message, 0, 2000) <> "…", else: message
  end
end
