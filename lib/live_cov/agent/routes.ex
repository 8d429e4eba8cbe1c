defmodule LiveCov.Agent.Routes do
  @moduledoc false
  # The agent's route handlers (called by `LiveCov.Agent.Router` once the request is
  # authenticated and matched). Each returns `{:ok, status, content_type, body}` (optionally
  # with extra headers) or `{:error, {kind, message}}`.
  #
  # Read-only computations (status, coverage, reports, metrics) go through
  # `LiveCov.Agent.Flight`: coalesced, bounded and at low priority. Mutations (instrument,
  # stop, reset, snapshot with reset) run in the request's own process.

  alias LiveCov.Agent.{Config, Flight, Metrics, Status}
  alias LiveCov.{JSON, Snapshot}

  @json "application/json"

  # Applications the agent itself runs on, or LiveCov needs: instrument them from a console
  # with LiveCov.start/2 if you really mean it.
  @refused [:live_cov, :erts, :kernel, :stdlib, :compiler, :crypto, :inets, :elixir, :logger]

  @content_types %{
    html: "text/html; charset=utf-8",
    lcov: "text/plain; charset=utf-8",
    cobertura: "application/xml; charset=utf-8",
    coveralls: @json,
    json: @json,
    terminal: "text/plain; charset=utf-8",
    annotated: "text/plain; charset=utf-8"
  }

  @report_params ["compile_root", "runtime_root", "root"]
  @vary {"vary", "accept-encoding"}
  @gzip_min 1024

  @doc "Applications `POST /instrument` refuses."
  def refused_applications, do: @refused

  @doc "Dispatches a matched route."
  @spec call(list, map, Config.t()) ::
          {:ok, pos_integer, String.t(), iodata}
          | {:ok, pos_integer, String.t(), iodata, list}
          | {:error, {atom, String.t()}}
  def call(["health"], _req, _config) do
    json(200, %{status: "ok", node: Atom.to_string(node())})
  end

  def call(["status"], req, config) do
    with :ok <- no_params(req.query),
         {:ok, body, enc} <-
           flight(:status, req, config, fn -> {:ok, JSON.encode!(Status.build())} end) do
      {:ok, 200, @json, body, enc}
    end
  end

  def call(["instrument"], req, _config) do
    with {:ok, body} <- json_body(req.body, required: true),
         :ok <- no_params(req.query),
         :ok <- known_keys(body, ["application", "applications", "mode", "backend"]),
         {:ok, names} <- app_names(body),
         {:ok, apps} <- resolve_apps(names),
         {:ok, mode} <- mode(body),
         {:ok, backend} <- backend(body) do
      case LiveCov.start(apps, mode: mode, backend: backend) do
        %{} = summary -> json(200, summary(summary))
        {:error, _} = error -> error
      end
    end
  end

  def call(["stop"], req, _config) do
    with {:ok, body} <- json_body(req.body, required: false),
         :ok <- no_params(req.query),
         :ok <- known_keys(body, ["application"]) do
      case Map.fetch(body, "application") do
        :error ->
          stopped(LiveCov.stop())

        {:ok, name} ->
          with {:ok, [app]} <- resolve_apps([name], check_refused: false),
               :ok <- main_node() do
            stopped(LiveCov.stop(app))
          end
      end
    end
  end

  def call(["coverage"], req, config) do
    with {:ok, opts} <- report_opts(req.query, config),
         {:ok, body, enc} <- flight({:coverage, opts}, req, config, fn -> coverage(opts) end) do
      {:ok, 200, @json, body, enc}
    end
  end

  def call(["report", :format], req, config) do
    with {:ok, format, mod} <- format(req.params.format),
         {:ok, opts} <- report_opts(req.query, config),
         {:ok, body, enc} <-
           flight({:report, format, opts}, req, config, fn -> render(mod, opts) end) do
      {:ok, 200, Map.fetch!(@content_types, format), body,
       [{"content-disposition", ~s(inline; filename="#{mod.filename()}")} | enc]}
    end
  end

  def call(["snapshot"], req, _config) do
    with :ok <- only_params(req.query, ["reset", "key"]),
         {:ok, reset?} <- boolean_param(req.query, "reset"),
         {:ok, key} <- dump_key(req.query, reset?),
         {:ok, 200, type, data, headers} <- snapshot(reset?, key) do
      case Map.get(req, :gzip, false) && gzip(data) do
        {:gzip, zipped} ->
          {:ok, 200, type, zipped, [{"content-encoding", "gzip"}, @vary | headers]}

        _ ->
          {:ok, 200, type, data, [@vary | headers]}
      end
    end
  end

  def call(["reset"], req, _config) do
    with :ok <- no_params(req.query),
         {:ok, body} <- json_body(req.body, required: false),
         :ok <- known_keys(body, []) do
      case LiveCov.reset() do
        :ok -> json(200, %{ok: true})
        {:error, _} = error -> error
      end
    end
  end

  def call(["metrics"], req, config) do
    with :ok <- no_params(req.query),
         {:ok, body, enc} <- flight(:metrics, req, config, fn -> {:ok, Metrics.render()} end) do
      {:ok, 200, Metrics.content_type(), body, enc}
    end
  end

  ## Read-only computations

  # Computes through LiveCov.Agent.Flight. A client that accepts gzip gets the body
  # compressed once, in the shared low-priority computation (reports of large code bases are
  # megabytes of very repetitive text): `{:ok, body, extra_headers}`.
  defp flight(key, req, config, fun) do
    gzip? = Map.get(req, :gzip, false)
    work = if gzip?, do: fn -> with({:ok, b} <- fun.(), do: {:ok, gzip(b)}) end, else: fun

    case Flight.run(Flight, {key, gzip?}, work, config.request_timeout) do
      {:ok, {:gzip, bin}} -> {:ok, bin, [{"content-encoding", "gzip"}, @vary]}
      {:ok, bin} -> {:ok, bin, [@vary]}
      {:error, _} = error -> error
    end
  end

  defp gzip(bin) when byte_size(bin) >= @gzip_min, do: {:gzip, :zlib.gzip(bin)}
  defp gzip(bin), do: bin

  defp coverage(opts) do
    with %LiveCov.Stats{} = s <- LiveCov.report(opts) do
      {:ok,
       JSON.encode!(%{
         coverage: s.coverage,
         sloc: s.sloc,
         hits: s.hits,
         misses: s.misses,
         files:
           Enum.map(s.files, fn f ->
             %{
               filename: f.filename,
               coverage: f.coverage,
               sloc: f.sloc,
               hits: f.hits,
               misses: f.misses
             }
           end)
       })}
    end
  end

  defp render(mod, opts) do
    with %LiveCov.Stats{} = stats <- LiveCov.report(opts) do
      fopts = if mod == LiveCov.Format.Terminal, do: [colors: false], else: []
      {:ok, stats |> mod.render(fopts) |> IO.iodata_to_binary()}
    end
  end

  defp format(name) do
    case Enum.find(@content_types, fn {k, _} -> Atom.to_string(k) == name end) do
      {format, _} ->
        {:ok, mod} = LiveCov.Formats.fetch(format)
        {:ok, format, mod}

      nil ->
        valid = @content_types |> Map.keys() |> Enum.map(&Atom.to_string/1) |> Enum.sort()

        {:error,
         {:unknown_format,
          "unknown report format #{inspect(name)}; use one of #{Enum.join(valid, ", ")} " <>
            "(GET /report/<format>)"}}
    end
  end

  defp report_opts(query, config) do
    with :ok <- only_params(query, @report_params),
         :ok <- check_roots(query) do
      from_query = for {k, v} <- query, do: {String.to_existing_atom(k), v}
      {:ok, config.report_opts |> Keyword.merge(from_query) |> Enum.sort()}
    end
  end

  # Source files are read from runtime_root: over HTTP it must be an existing directory given
  # as a plain absolute path, so a request cannot point a source at an arbitrary file (e.g.
  # compile_root=<a module's source file>&runtime_root=/etc/passwd) or walk up with "..".
  defp check_roots(query) do
    Enum.reduce_while(query, :ok, fn {key, value}, :ok ->
      case check_root(key, value) do
        :ok -> {:cont, :ok}
        error -> {:halt, error}
      end
    end)
  end

  defp check_root(key, value) do
    segments = String.split(value, "/")

    cond do
      not String.valid?(value) or String.contains?(value, <<0>>) ->
        bad_root(key, "must be a valid UTF-8 path without NUL bytes")

      not String.starts_with?(value, "/") ->
        bad_root(key, "must be an absolute path")

      ".." in segments or "." in segments ->
        bad_root(key, "must not contain . or .. segments")

      key in ["runtime_root", "root"] and not File.dir?(value) ->
        bad_root(key, "must be an existing directory on the node")

      true ->
        :ok
    end
  end

  defp bad_root(key, why),
    do: {:error, {:invalid_parameter, "query parameter #{key} #{why}"}}

  ## Snapshot

  # `key` makes a dump-and-reset retryable: the same key gets the same dump (LiveCov.Dumps).
  defp dump_key(query, reset?) do
    case Map.fetch(query, "key") do
      :error ->
        {:ok, nil}

      {:ok, _} when not reset? ->
        {:error, {:invalid_parameter, "key only applies to a dump: add reset=true"}}

      {:ok, key} ->
        if LiveCov.Dumps.valid_key?(key),
          do: {:ok, key},
          else:
            {:error,
             {:invalid_parameter,
              "key must be #{LiveCov.Dumps.key_rule()} (a fresh random " <>
                "token per dump, the same one to retry it)"}}
    end
  end

  defp snapshot(reset?, key) do
    {replayed, snap} =
      cond do
        key != nil -> LiveCov.Dumps.take(key)
        reset? -> {:new, LiveCov.dump_and_reset()}
        true -> {:new, LiveCov.snapshot()}
      end

    case Snapshot.encode_with_hash(snap) do
      {:ok, {data, hash}} ->
        modules = snap.metas |> Map.values() |> Enum.map(& &1.module) |> Enum.uniq()

        {:ok, 200, "application/octet-stream", data,
         [
           {"content-disposition", ~s(attachment; filename="live_cov.snapshot")},
           {"x-live-cov-content-hash", Base.encode16(hash, case: :lower)},
           {"x-live-cov-modules", Integer.to_string(length(modules))},
           {"x-live-cov-reset", to_string(reset?)},
           {"x-live-cov-replayed", to_string(replayed == :replayed)}
         ]}

      {:error, {kind, message}} ->
        # The counts were taken from the table: give them back rather than lose them (and
        # forget the key: a retry must dump again, not replay what was given back).
        if reset? and replayed == :new, do: LiveCov.Capture.give_back(snap)
        if key != nil and replayed == :new, do: LiveCov.Dumps.forget(key)
        {:error, {kind, "could not encode the snapshot: #{message}"}}
    end
  end

  ## Instrument / stop helpers

  defp app_names(%{"application" => _, "applications" => _}),
    do: invalid_body("give either \"application\" or \"applications\", not both")

  defp app_names(%{"application" => name}) when is_binary(name), do: {:ok, [name]}

  defp app_names(%{"applications" => names})
       when is_list(names) and names != [] and length(names) <= 1000 do
    if Enum.all?(names, &is_binary/1),
      do: {:ok, Enum.uniq(names)},
      else: invalid_body("\"applications\" must be a list of application names (strings)")
  end

  defp app_names(_),
    do:
      invalid_body(
        "expected {\"application\": \"my_app\"} or {\"applications\": [\"my_app\", ...]}"
      )

  defp resolve_apps(names, opts \\ []) do
    check_refused = Keyword.get(opts, :check_refused, true)
    LiveCov.Util.map_ok(names, &resolve_app(&1, check_refused))
  end

  defp resolve_app(name, check_refused) when is_binary(name) do
    cond do
      not Regex.match?(~r/\A[a-z][a-zA-Z0-9_]{0,254}\z/, name) ->
        invalid_body(
          "#{inspect(name)} is not an application name (a lowercase identifier like my_app)"
        )

      app = find_app(name) ->
        if check_refused and app in @refused,
          do:
            {:error,
             {:refused_application,
              "the agent does not instrument #{app} (LiveCov and the agent run on it); " <>
                "instrument your own applications"}},
          else: {:ok, app}

      true ->
        {:error,
         {:unknown_application,
          "no application #{name} on node #{node()}: it is not loaded and no #{name}.app " <>
            "is on the code path; GET /status lists the loaded applications"}}
    end
  end

  defp resolve_app(other, _),
    do: invalid_body("application names must be strings, got: #{inspect(other, limit: 3)}")

  # Never creates an atom for a name that is not an application on this node.
  defp find_app(name) do
    loaded =
      Enum.find_value(Application.loaded_applications(), fn {app, _, _} ->
        if Atom.to_string(app) == name, do: app
      end)

    cond do
      loaded ->
        loaded

      :code.where_is_file(String.to_charlist(name <> ".app")) != :non_existing ->
        String.to_atom(name)

      true ->
        nil
    end
  end

  defp mode(body) do
    case Map.get(body, "mode", "counts") do
      "counts" -> {:ok, :counts}
      "coverage" -> {:ok, :coverage}
      other -> invalid_body("\"mode\" must be \"counts\" or \"coverage\", got: #{inspect(other)}")
    end
  end

  defp backend(body) do
    case Map.get(body, "backend", "auto") do
      "auto" ->
        {:ok, :auto}

      "native" ->
        {:ok, :native}

      "nif" ->
        {:ok, :nif}

      other ->
        invalid_body(~s("backend" must be "auto", "native" or "nif", got: #{inspect(other)}))
    end
  end

  defp main_node do
    case LiveCov.MainNode.check_main() do
      :ok -> :ok
      _ -> LiveCov.MainNode.not_main_node()
    end
  end

  defp summary(summary) do
    base = %{
      backend: Atom.to_string(summary.backend),
      instrumented: Enum.map(summary.instrumented, &Atom.to_string/1),
      applications: Enum.map(summary.applications, &Atom.to_string/1),
      skipped:
        Enum.map(summary.skipped, fn s ->
          %{target: target_name(s.target), kind: s.kind, message: s.message}
        end)
    }

    case summary do
      %{nodes: nodes, node_errors: errors} ->
        Map.merge(base, %{
          nodes: Enum.map(nodes, &Atom.to_string/1),
          node_errors:
            Enum.map(errors, fn e ->
              %{node: Atom.to_string(e.node), kind: e.kind, message: e.message}
            end)
        })

      _ ->
        base
    end
  end

  defp target_name(t) when is_atom(t), do: Atom.to_string(t)
  defp target_name(t) when is_binary(t), do: t
  defp target_name(t) when is_list(t), do: List.to_string(t)
  defp target_name(t), do: inspect(t)

  defp stopped(%{restored: restored, still_running: running, failed: failed}) do
    json(200, %{
      restored: Enum.map(restored, &Atom.to_string/1),
      still_running:
        Enum.map(running, fn {m, pids} ->
          %{module: Atom.to_string(m), pids: Enum.map(pids, &inspect/1)}
        end),
      failed:
        Enum.map(failed, fn {m, {kind, message}} ->
          %{module: Atom.to_string(m), kind: kind, message: message}
        end)
    })
  end

  defp stopped({:error, _} = error), do: error

  ## Request helpers

  defp json(status, term), do: {:ok, status, @json, JSON.encode!(term)}

  defp json_body(body, opts) do
    cond do
      String.trim(body) == "" and opts[:required] ->
        invalid_body("this route needs a JSON object body")

      String.trim(body) == "" ->
        {:ok, %{}}

      true ->
        case JSON.decode(body) do
          {:ok, %{} = map} ->
            {:ok, map}

          {:ok, _other} ->
            invalid_body("the body must be a JSON object")

          {:error, {_, message}} ->
            {:error, {:malformed_json, "the body is not valid JSON: #{message}"}}
        end
    end
  end

  defp known_keys(map, keys) do
    case Map.keys(map) -- keys do
      [] ->
        :ok

      unknown ->
        invalid_body("unknown field(s) #{inspect(unknown)}; valid fields are #{inspect(keys)}")
    end
  end

  defp no_params(query), do: only_params(query, [])

  defp only_params(query, allowed) do
    case Map.keys(query) -- allowed do
      [] ->
        :ok

      unknown ->
        valid =
          if allowed == [],
            do: "this route takes none",
            else: "valid: #{Enum.join(allowed, ", ")}"

        {:error,
         {:unknown_parameter, "unknown query parameter(s) #{Enum.join(unknown, ", ")}; #{valid}"}}
    end
  end

  defp boolean_param(query, key) do
    case Map.get(query, key) do
      nil ->
        {:ok, false}

      v when v in ["true", "1"] ->
        {:ok, true}

      v when v in ["false", "0"] ->
        {:ok, false}

      other ->
        {:error, {:invalid_parameter, "#{key} must be true or false, got: #{inspect(other)}"}}
    end
  end

  defp invalid_body(message), do: {:error, {:invalid_body, message}}
end
