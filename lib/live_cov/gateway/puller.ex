defmodule LiveCov.Gateway.Puller do
  @moduledoc false
  # Fetches one source's snapshot: `GET /snapshot` of an agent (`:httpc`, bearer token) or
  # `LiveCov.snapshot/0` on a distributed-Erlang node (`:erpc`), within a timeout.
  #
  # `fetch(source, timeout, reset: true)` dumps and resets in one step (`/snapshot?reset=true`,
  # `LiveCov.dump_and_reset/1`) under a fresh dump key (`LiveCov.Dumps`), and retries a dump
  # that timed out or found the source unreachable up to 2 more times with the same key:
  # if the source had dumped but its answer was lost, the retry gets that dump, not a second
  # one. Returns `{:ok, snapshot, encoded}` or `{:error, {kind, message}}` with kind
  # `:unreachable`, `:timeout`, `:unauthorized`, `:agent_error`, `:bad_snapshot` or
  # `:node_error`. Never raises.

  @reset_attempts 3
  @retry_pause_ms 250

  alias LiveCov.Gateway.Source
  alias LiveCov.Snapshot

  @doc "Fetches a snapshot (see the module doc)."
  @spec fetch(Source.t(), pos_integer, keyword) ::
          {:ok, Snapshot.t(), binary} | {:error, {atom, String.t()}}
  def fetch(source, timeout, opts \\ []) do
    if Keyword.get(opts, :reset, false) do
      key = Keyword.get_lazy(opts, :key, &new_key/0)
      fetch_reset(source, timeout, key, @reset_attempts)
    else
      fetch_once(source, timeout, nil)
    end
  end

  @doc "The longest a `fetch/3` with these options can take (its retries included)."
  @spec max_time(pos_integer, keyword) :: pos_integer
  def max_time(timeout, opts) do
    attempts = if Keyword.get(opts, :reset, false), do: @reset_attempts, else: 1
    attempts * (2 * timeout + @retry_pause_ms) + 1_000
  end

  defp fetch_reset(s, timeout, key, attempts) do
    case fetch_once(s, timeout, key) do
      {:error, {kind, _}} when kind in [:timeout, :unreachable] and attempts > 1 ->
        Process.sleep(@retry_pause_ms)
        fetch_reset(s, timeout, key, attempts - 1)

      other ->
        other
    end
  end

  defp new_key, do: "gw-" <> Base.url_encode64(:crypto.strong_rand_bytes(18), padding: false)

  # `key`: nil for a plain snapshot, else the dump key of a dump-and-reset.
  defp fetch_once(%Source{kind: :agent} = s, timeout, key) do
    query = if key, do: "?reset=true&key=" <> key, else: ""
    url = s.url <> "/snapshot" <> query
    headers = [{~c"connection", ~c"close"} | auth(s.token)]
    http_opts = [timeout: timeout, connect_timeout: min(timeout, 5_000), autoredirect: false]

    result =
      try do
        :httpc.request(:get, {String.to_charlist(url), headers}, http_opts, body_format: :binary)
      catch
        kind, reason -> {:error, {kind, reason}}
      end

    case result do
      {:ok, {{_, 200, _}, _headers, body}} ->
        decode(body, s.name)

      {:ok, {{_, 401, _}, _, _}} ->
        {:error,
         {:unauthorized,
          "agent #{s.name} refused the token (401); check the agent's token in the gateway config"}}

      {:ok, {{_, status, reason}, _, body}} ->
        {:error,
         {:agent_error, "agent #{s.name} answered HTTP #{status} #{reason}: #{excerpt(body)}"}}

      {:error, :timeout} ->
        {:error, {:timeout, "agent #{s.name} did not answer within #{timeout} ms"}}

      {:error, reason} ->
        {:error, {:unreachable, "agent #{s.name} (#{s.url}) is unreachable: #{inspect(reason)}"}}
    end
  end

  defp fetch_once(%Source{kind: :node} = s, timeout, key) do
    {fun, args} = if key, do: {:dump_and_reset, [[key: key]]}, else: {:snapshot, []}

    cond do
      not Node.alive?() ->
        {:error,
         {:node_error,
          "the gateway is not a distributed node, so it cannot reach #{s.node}; " <>
            "give distribution: [name: \"live_cov_gateway@host\", cookie: \"...\"]"}}

      true ->
        if s.cookie, do: Node.set_cookie(s.node, s.cookie)

        try do
          case :erpc.call(s.node, LiveCov, fun, args, timeout) do
            %Snapshot{} = snap ->
              case Snapshot.encode(snap) do
                {:ok, bin} -> {:ok, snap, bin}
                {:error, {_, msg}} -> {:error, {:bad_snapshot, "node #{s.node}: #{msg}"}}
              end

            other ->
              {:error,
               {:node_error,
                "node #{s.node} answered #{inspect(other, limit: 5)} instead of a snapshot"}}
          end
        catch
          :error, {:erpc, :timeout} ->
            {:error, {:timeout, "node #{s.node} did not answer within #{timeout} ms"}}

          :error, {:erpc, :noconnection} ->
            {:error,
             {:unreachable, "node #{s.node} is not reachable (down, wrong name or cookie)"}}

          kind, reason ->
            {:error,
             {:node_error,
              "node #{s.node}: LiveCov.#{fun}() failed: #{Exception.format_banner(kind, reason)}"}}
        end
    end
  end

  @doc "The git commit a source reports (`GET /status` or `LiveCov.Agent.Status.git_commit/0`), or nil."
  @spec git_commit(Source.t(), pos_integer) :: String.t() | nil
  def git_commit(%Source{kind: :agent} = s, timeout) do
    request =
      {String.to_charlist(s.url <> "/status"), [{~c"connection", ~c"close"} | auth(s.token)]}

    with {:ok, {{_, 200, _}, _, body}} <-
           :httpc.request(:get, request, [timeout: timeout], body_format: :binary),
         {:ok, %{"git_commit" => commit}} when is_binary(commit) <- LiveCov.JSON.decode(body) do
      commit
    else
      _ -> nil
    end
  catch
    _, _ -> nil
  end

  def git_commit(%Source{kind: :node} = s, timeout) do
    case :erpc.call(s.node, LiveCov.Agent.Status, :git_commit, [], timeout) do
      {commit, _} when is_binary(commit) -> commit
      _ -> nil
    end
  catch
    _, _ -> nil
  end

  defp decode(body, name) do
    case Snapshot.decode(body) do
      {:ok, snap} ->
        {:ok, snap, body}

      {:error, {kind, msg}} ->
        {:error, {:bad_snapshot, "agent #{name} sent a bad snapshot (#{kind}): #{msg}"}}
    end
  end

  defp auth(nil), do: []
  defp auth(token), do: [{~c"authorization", String.to_charlist("Bearer " <> token)}]

  defp excerpt(body) do
    text = body |> to_string() |> String.slice(0, 300)
    if String.valid?(text), do: text, else: inspect(text, limit: 20)
  end
end
