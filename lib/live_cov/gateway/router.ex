defmodule LiveCov.Gateway.Router do
  @moduledoc false
  # Routes of the gateway's HTTP server.
  #
  # | method & path | answer |
  # |---|---|
  # | `GET /` | dashboard: services, sources, runs, coverage per run over time |
  # | `GET /services/:name` (`?build=`) | dashboard: a service's builds, sources and files |
  # | `GET /services/:name/source?file=` (`&build=`) | dashboard: a file with per-line hit counts |
  # | `GET /runs/:id`, `GET /runs/:id/source?service=&file=` | dashboard: a run's files and sources |
  # | `GET /assets/gateway.css`, `/assets/gateway.js` | the dashboard's CSS and JS |
  # | `GET /api/health` | `{"status":"ok"}` |
  # | `GET /api/status` | sources (status, last pull, error, builds) and runs |
  # | `GET /api/services`, `/api/services/:name` (`?build=`) | totals; a service's files and builds |
  # | `GET /api/services/:name/source?file=` | a file's lines `[{line, hits, text}]` |
  # | `GET /api/services/:name/snapshot` | the service's merged `LiveCov.Snapshot` (token) |
  # | `GET /api/runs`, `/api/runs/:id`, `/api/runs/:id/source?service=&file=` | runs and results |
  # | `POST /runs` (or `/api/runs`) | starts a run: `{"name", "reset", "services", "labels"}` |
  # | `POST /runs/:id/finish` (or `/api/...`) | final pull, results, publishing |
  # | `POST /api/pull` | pulls every source now |
  #
  # POST routes and the snapshot download need `Authorization: Bearer <token>` when the gateway
  # has a token; without one, POST bodies must be `content-type: application/json` (which a
  # cross-site form cannot send).

  alias LiveCov.Gateway.{Api, Assets, Dashboard}

  @doc "Answers one request: `{status, [{header, value}], body}`."
  @spec handle(map, map) :: {pos_integer, [{String.t(), String.t()}], binary}
  def handle(req, config) do
    segments = segments(req.path)
    api? = match?(["api" | _], segments)

    result =
      with {:ok, query} <- query(req.query),
           req = Map.merge(req, %{query: query, segments: segments}),
           :ok <- authorize(req, config) do
        # HEAD is answered as GET (the handler drops the body).
        route(if(req.method == "HEAD", do: "GET", else: req.method), segments, req)
      end

    case result do
      {:ok, status, type, body} ->
        {status, [{"content-type", type} | security(type)], IO.iodata_to_binary(body)}

      {:error, {kind, message}} when api? or req.method == "POST" ->
        error({kind, message})

      {:error, {kind, message}} ->
        Dashboard.error_page(status_of(kind), message)
    end
  end

  defp route("GET", [], _req), do: Dashboard.index()
  defp route("GET", ["services", name], req), do: Dashboard.service(name, req.query)
  defp route("GET", ["services", name, "source"], req), do: Dashboard.source(name, req.query)
  defp route("GET", ["runs", id], _req), do: Dashboard.run(id)
  defp route("GET", ["runs", id, "source"], req), do: Dashboard.run_source(id, req.query)
  defp route("GET", ["assets", file], _req), do: Assets.get(file)
  defp route("GET", ["favicon.ico"], _req), do: {:ok, 204, "image/x-icon", ""}
  defp route("GET", ["api", "health"], _req), do: Api.json(200, %{status: "ok"})
  defp route("GET", ["api", "status"], _req), do: Api.status()
  defp route("GET", ["api", "services"], _req), do: Api.services()
  defp route("GET", ["api", "services", name], req), do: Api.service(name, req.query)
  defp route("GET", ["api", "services", name, "source"], req), do: Api.source(name, req.query)
  defp route("GET", ["api", "services", name, "snapshot"], _req), do: Api.snapshot(name)
  defp route("GET", ["api", "runs"], _req), do: Api.runs()
  defp route("GET", ["api", "runs", id], _req), do: Api.run(id)
  defp route("GET", ["api", "runs", id, "source"], req), do: Api.run_source(id, req.query)
  defp route("POST", ["api", "pull"], _req), do: Api.pull()
  defp route("POST", ["api", "runs"], req), do: Api.start_run(req.body)
  defp route("POST", ["runs"], req), do: Api.start_run(req.body)
  defp route("POST", ["api", "runs", id, "finish"], _req), do: Api.finish_run(id)
  defp route("POST", ["runs", id, "finish"], _req), do: Api.finish_run(id)

  defp route(method, segments, _req) do
    path = "/" <> Enum.join(segments, "/")

    case allowed(segments) -- [method] do
      [] ->
        {:error, {:not_found, "no page or route #{method} #{path}"}}

      other ->
        {:error,
         {:method_not_allowed,
          "#{method} is not allowed on #{path}; use #{Enum.join(other, ", ")}"}}
    end
  end

  defp allowed(["runs"]), do: ["POST"]
  defp allowed(["api", "runs"]), do: ["GET", "POST"]
  defp allowed(["api", "pull"]), do: ["POST"]
  defp allowed(["runs", _, "finish"]), do: ["POST"]
  defp allowed(["api", "runs", _, "finish"]), do: ["POST"]
  defp allowed(_), do: []

  defp authorize(%{method: "POST"} = req, %{token: nil}) do
    type = header(req, "content-type") || ""

    if String.starts_with?(type, "application/json"),
      do: :ok,
      else:
        {:error,
         {:unsupported_media_type, "POST bodies must be sent with content-type: application/json"}}
  end

  defp authorize(%{method: "POST"} = req, %{token: token}), do: bearer(req, token)

  defp authorize(%{segments: ["api", "services", _, "snapshot"]} = req, %{token: token})
       when is_binary(token),
       do: bearer(req, token)

  defp authorize(_req, _config), do: :ok

  defp bearer(req, token) do
    given =
      case header(req, "authorization") do
        "Bearer " <> t -> String.trim(t)
        "bearer " <> t -> String.trim(t)
        _ -> ""
      end

    if :crypto.hash_equals(:crypto.hash(:sha256, given), :crypto.hash(:sha256, token)),
      do: :ok,
      else:
        {:error,
         {:unauthorized,
          "missing or wrong bearer token; send Authorization: Bearer <the gateway token>"}}
  end

  defp header(req, name) do
    Enum.find_value(req.headers, fn {k, v} -> if String.downcase(k) == name, do: v end)
  end

  defp segments(path) do
    path |> String.split("/", trim: true) |> Enum.map(&URI.decode/1)
  rescue
    _ -> ["?"]
  end

  defp query(""), do: {:ok, %{}}

  defp query(q) do
    {:ok, URI.decode_query(q)}
  rescue
    _ ->
      {:error,
       {:invalid_parameter, "malformed query string; use key=value pairs, percent-encoded"}}
  end

  # HTML gets a content security policy: only the gateway's own CSS and JS run.
  defp security("text/html" <> _),
    do: [
      {"content-security-policy",
       "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}
    ]

  defp security(_), do: []

  @doc "The HTTP status of an error kind."
  def status_of(kind), do: LiveCov.Errors.status(kind)

  @doc "A JSON error response."
  def error({kind, message}) do
    body = LiveCov.JSON.encode!(%{error: %{kind: kind, message: message}})
    {status_of(kind), [{"content-type", "application/json"}], body}
  end
end
