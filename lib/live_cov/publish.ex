defmodule LiveCov.Publish do
  @moduledoc false
  # Posts this node's coverage, in the Coveralls JSON format (`LiveCov.Format.Coveralls`),
  # straight to an HTTP endpoint: a coverage service, a CI collector, a Coveralls-compatible
  # server. For one node without a gateway. `LiveCov.publish/2` calls `publish/2`.
  #
  #     LiveCov.publish("https://cov.example.com/api/v1/jobs",
  #       compile_root: "/build/my_app", runtime_root: "/srv/my_app",
  #       service_name: "integration", service_job_id: "1742",
  #       extra: %{"git" => %{"branch" => "main"}},
  #       headers: [{"authorization", "Bearer " <> token}])
  #     #=> {:ok, %{status: 200, attempts: 1, bytes: 48213, body: "..."}}
  #
  # Options:
  #
  #   * report options of `LiveCov.report/1`: `:compile_root`, `:runtime_root`, `:root`,
  #     `:path_map`, `:ignore_modules`, `:skip_files`; or `:stats` - a ready `LiveCov.Stats`.
  #   * Coveralls fields (`LiveCov.Format.Coveralls`): `:service_name`, `:service_job_id`,
  #     `:service_number`, `:service_pull_request`, `:repo_token`, `:parallel`, `:flag_name`,
  #     `:run_at`, `:commit_sha`, `:git`, `:include_source`.
  #   * `:extra` - a map merged into the top-level JSON object (what ex_integration_coveralls
  #     calls `extends_post_params`); the report's own fields win.
  #   * `:headers` - extra request headers, `[{name, value}]`.
  #   * `:encoding` - `:json` (default: the JSON document is the body) or `:multipart`
  #     (`multipart/form-data` with the document in a `json_file` field, as coveralls.io's
  #     jobs API takes it).
  #   * `:retries` (default 3) - further attempts after a failure that may pass: connection
  #     errors, timeouts, 408, 429 and 5xx answers. Other 4xx answers are not retried.
  #   * `:backoff` (default 500 ms) and `:max_backoff` (default 10 s) - the wait before retry
  #     `n` is `min(max_backoff, backoff * 2^(n-1))` plus up to 25 % jitter; a 429/503's
  #     `Retry-After` is honoured when it is not longer than `:max_backoff`.
  #   * `:timeout` (default 30 s) and `:connect_timeout` (default 10 s), per attempt.
  #   * `:ssl` - `:httpc` SSL options for `https` URLs (default: verify the peer against the
  #     OS certificate store).
  #
  # Returns `{:ok, %{status:, body:, attempts:, bytes:}}` on a 2xx answer, else
  # `{:error, {kind, message}}`: `:refused` (the endpoint answered 3xx/4xx: the message has
  # its status and the start of its body), `:unavailable` (still failing after the retries),
  # `:invalid_url`, `:invalid_option`, or an error of `LiveCov.report/1`.

  alias LiveCov.{Format, JSON, Stats}

  @stats_opts [:compile_root, :runtime_root, :root, :path_map, :ignore_modules, :skip_files]
  @coveralls_opts Format.Coveralls.options()
  @own_opts [
    :stats,
    :extra,
    :headers,
    :encoding,
    :retries,
    :backoff,
    :max_backoff,
    :timeout,
    :connect_timeout,
    :ssl
  ]

  @doc "Publishes the coverage report to `url`. See the module doc."
  @spec publish(String.t(), keyword) :: {:ok, map} | {:error, {atom, String.t()}}
  def publish(url, opts \\ []) do
    with :ok <- check_opts(opts),
         {:ok, uri} <- parse_url(url),
         {:ok, settings} <- settings(opts),
         {:ok, stats} <- stats(opts),
         {:ok, doc} <- document(stats, opts, settings),
         :ok <- ensure_started(uri) do
      {content_type, body} = encode_body(doc, settings.encoding)
      headers = request_headers(settings.headers)
      request = {String.to_charlist(url), headers, String.to_charlist(content_type), body}
      attempt(request, url, settings, byte_size(body), 1)
    end
  end

  ## Options

  defp check_opts(opts) do
    known = @stats_opts ++ @coveralls_opts ++ @own_opts

    cond do
      not Keyword.keyword?(opts) ->
        invalid("options must be a keyword list, got: #{inspect(opts, limit: 5)}")

      (unknown = Keyword.keys(opts) -- known) != [] ->
        invalid("unknown option(s) #{inspect(unknown)}; valid options are #{inspect(known)}")

      true ->
        :ok
    end
  end

  defp parse_url(url) when is_binary(url) do
    case URI.new(url) do
      {:ok, %URI{scheme: scheme, host: host} = uri}
      when scheme in ["http", "https"] and is_binary(host) and host != "" ->
        {:ok, uri}

      _ ->
        {:error,
         {:invalid_url,
          "#{inspect(url)} is not an http(s) URL; give e.g. \"https://cov.example.com/api/v1/jobs\""}}
    end
  end

  defp parse_url(other),
    do: {:error, {:invalid_url, "the URL must be a string, got: #{inspect(other, limit: 3)}"}}

  defp settings(opts) do
    with {:ok, retries} <- int(opts, :retries, 3, 0, 20),
         {:ok, backoff} <- int(opts, :backoff, 500, 0, 600_000),
         {:ok, max_backoff} <- int(opts, :max_backoff, 10_000, 0, 3_600_000),
         {:ok, timeout} <- int(opts, :timeout, 30_000, 1, 3_600_000),
         {:ok, connect} <- int(opts, :connect_timeout, 10_000, 1, 3_600_000),
         {:ok, headers} <- headers(Keyword.get(opts, :headers, [])),
         {:ok, encoding} <- encoding(Keyword.get(opts, :encoding, :json)),
         {:ok, extra} <- extra(Keyword.get(opts, :extra, %{})) do
      {:ok,
       %{
         retries: retries,
         backoff: backoff,
         max_backoff: max_backoff,
         timeout: timeout,
         connect_timeout: connect,
         headers: headers,
         encoding: encoding,
         extra: extra,
         ssl: Keyword.get(opts, :ssl)
       }}
    end
  end

  defp int(opts, key, default, min, max) do
    case Keyword.get(opts, key, default) do
      n when is_integer(n) and n >= min and n <= max -> {:ok, n}
      other -> invalid("#{key}: must be an integer #{min}..#{max}, got: #{inspect(other)}")
    end
  end

  defp headers(list) when is_list(list) do
    if Enum.all?(list, &match?({k, v} when is_binary(k) and is_binary(v), &1)),
      do: {:ok, list},
      else: invalid("headers: must be a list of {name, value} strings")
  end

  defp headers(_), do: invalid("headers: must be a list of {name, value} strings")

  defp encoding(e) when e in [:json, :multipart], do: {:ok, e}
  defp encoding(e), do: invalid("encoding: must be :json or :multipart, got: #{inspect(e)}")

  defp extra(map) when is_map(map), do: {:ok, map}
  defp extra(other), do: invalid("extra: must be a map, got: #{inspect(other, limit: 3)}")

  defp invalid(message), do: {:error, {:invalid_option, message}}

  ## The document

  defp stats(opts) do
    case Keyword.fetch(opts, :stats) do
      {:ok, %Stats{} = stats} ->
        {:ok, stats}

      {:ok, other} ->
        invalid("stats: must be a %LiveCov.Stats{}, got: #{inspect(other, limit: 3)}")

      :error ->
        case LiveCov.Report.build(Keyword.take(opts, @stats_opts)) do
          %Stats{} = stats -> {:ok, stats}
          {:error, _} = error -> error
        end
    end
  end

  defp document(stats, opts, settings) do
    json =
      stats
      |> Format.Coveralls.render(Keyword.take(opts, @coveralls_opts))
      |> IO.iodata_to_binary()

    if settings.extra == %{} do
      {:ok, json}
    else
      with {:ok, doc} <- JSON.decode(json),
           {:ok, extra} <- JSON.encode(settings.extra),
           {:ok, extra} <- JSON.decode(extra) do
        JSON.encode(Map.merge(extra, doc))
      end
    end
  end

  defp encode_body(json, :json), do: {"application/json", json}

  defp encode_body(json, :multipart) do
    boundary = "livecov-" <> Base.encode16(:crypto.strong_rand_bytes(12), case: :lower)

    body =
      IO.iodata_to_binary([
        "--",
        boundary,
        "\r\n",
        "content-disposition: form-data; name=\"json_file\"; filename=\"coveralls.json\"\r\n",
        "content-type: application/json\r\n\r\n",
        json,
        "\r\n--",
        boundary,
        "--\r\n"
      ])

    {"multipart/form-data; boundary=" <> boundary, body}
  end

  defp request_headers(extra) do
    base = [
      {~c"user-agent", String.to_charlist("live_cov/#{LiveCov.Runtime.live_cov_version()}")}
    ]

    base ++ Enum.map(extra, fn {k, v} -> {String.to_charlist(k), String.to_charlist(v)} end)
  end

  defp ensure_started(%URI{scheme: "https"}) do
    case Application.ensure_all_started(:ssl) do
      {:ok, _} ->
        :ok

      {:error, reason} ->
        {:error,
         {:ssl_unavailable,
          "https needs the :ssl application, which did not start: #{inspect(reason)}"}}
    end
  end

  defp ensure_started(_uri) do
    case Application.ensure_all_started(:inets) do
      {:ok, _} ->
        :ok

      {:error, reason} ->
        {:error, {:inets_unavailable, "inets did not start: #{inspect(reason)}"}}
    end
  end

  ## Sending

  defp attempt(request, url, s, bytes, n) do
    http_opts =
      [timeout: s.timeout, connect_timeout: s.connect_timeout, autoredirect: false] ++
        ssl_opts(url, s.ssl)

    result =
      try do
        :httpc.request(:post, request, http_opts, body_format: :binary)
      catch
        kind, reason -> {:error, {kind, reason}}
      end

    case classify(result) do
      {:ok, status, body} ->
        {:ok, %{status: status, body: body, attempts: n, bytes: bytes}}

      {:refused, status, reason, body} ->
        {:error,
         {:refused,
          "#{url} refused the coverage report: HTTP #{status} #{reason}#{excerpt(body)}" <>
            " (attempt #{n}; not retried: fix the request, the URL or the credentials)"}}

      {:retry, why, retry_after} ->
        if n > s.retries do
          {:error,
           {:unavailable,
            "#{url} did not accept the coverage report after #{n} attempt(s); last: #{why}"}}
        else
          Process.sleep(delay(s, n, retry_after))
          attempt(request, url, s, bytes, n + 1)
        end
    end
  end

  defp classify({:ok, {{_, status, reason}, headers, body}}) do
    cond do
      status in 200..299 ->
        {:ok, status, body}

      status in [408, 429] or status >= 500 ->
        {:retry, "HTTP #{status} #{reason}#{excerpt(body)}", retry_after(headers)}

      true ->
        body =
          case List.keyfind(headers, ~c"location", 0) do
            {_, loc} -> "redirected to #{loc}; publish to that URL"
            nil -> body
          end

        {:refused, status, reason, body}
    end
  end

  defp classify({:error, reason}), do: {:retry, "connection error: #{inspect(reason)}", nil}

  defp retry_after(headers) do
    with {_, value} <- List.keyfind(headers, ~c"retry-after", 0),
         {secs, ""} <- Integer.parse(to_string(value)),
         true <- secs >= 0 do
      secs * 1000
    else
      _ -> nil
    end
  end

  @doc false
  # The wait before attempt n + 1 (n >= 1).
  def delay(s, n, retry_after) do
    exp = min(s.max_backoff, s.backoff * Integer.pow(2, min(n - 1, 30)))
    jitter = if exp > 0, do: :rand.uniform(div(exp, 4) + 1) - 1, else: 0
    base = min(s.max_backoff, exp + jitter)

    case retry_after do
      ms when is_integer(ms) and ms <= s.max_backoff -> max(base, ms)
      _ -> base
    end
  end

  defp ssl_opts(url, nil) do
    if String.starts_with?(url, "https:") do
      [ssl: [verify: :verify_peer, cacerts: cacerts(), depth: 4] ++ hostname_check()]
    else
      []
    end
  end

  defp ssl_opts(_url, ssl) when is_list(ssl), do: [ssl: ssl]

  # :public_key comes with :ssl (started for https URLs); called through apply/3 because
  # LiveCov does not otherwise depend on it.
  defp cacerts do
    apply(:public_key, :cacerts_get, [])
  rescue
    _ -> []
  end

  defp hostname_check do
    [
      customize_hostname_check: [
        match_fun: apply(:public_key, :pkix_verify_hostname_match_fun, [:https])
      ]
    ]
  end

  defp excerpt(body) do
    text = body |> to_string() |> String.trim()
    text = if String.valid?(text), do: text, else: inspect(text, limit: 20)

    cond do
      text == "" -> ""
      String.length(text) > 300 -> ": " <> String.slice(text, 0, 300) <> "…"
      true -> ": " <> text
    end
  end
end
