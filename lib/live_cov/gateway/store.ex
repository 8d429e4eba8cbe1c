defmodule LiveCov.Gateway.Store do
  @moduledoc false
  # The gateway's persisted state, in its `data_dir`:
  #
  #   * `gateway.state` - everything pulled (per source: the current and retired snapshots,
  #     encoded as `LiveCov.Snapshot` files), the runs and their baselines. One file, written
  #     atomically (temporary file + rename) after every pull that changed something, so a
  #     crash leaves either the previous or the new state, never a mix. The file starts with a
  #     magic, a format version and a SHA-256 of the rest.
  #   * `runs/<run id>/<service>.snapshot` - what each finished run measured per service
  #     (written once).
  #
  # On start the state is loaded; an unreadable file is moved aside
  # (`gateway.state.corrupt-<time>`) and the previous generation (`gateway.state.prev`) is tried.

  require Logger

  alias LiveCov.Report.Writer
  alias LiveCov.Snapshot

  @magic "LCGWSTATE"
  @version 1

  @doc "The state file's path."
  def state_path(dir), do: Path.join(dir, "gateway.state")

  @doc "Writes the state term atomically. `:ok` or `{:error, {kind, message}}`."
  @spec save(Path.t(), map) :: :ok | {:error, {atom, String.t()}}
  def save(dir, state) when is_map(state) do
    path = state_path(dir)
    body = :erlang.term_to_binary(state)
    data = [@magic, <<@version::16>>, :crypto.hash(:sha256, body), body]

    # Keep the previous generation (a hard link, no copy): a second chance should this one
    # ever be unreadable.
    _ = File.rm(path <> ".prev")
    _ = File.ln(path, path <> ".prev")
    Writer.atomic_write(path, data)
  end

  @doc "Loads the state term: `{:ok, map}` (empty when there is none yet)."
  @spec load(Path.t()) :: {:ok, map}
  def load(dir) do
    path = state_path(dir)

    case read(path) do
      {:ok, state} ->
        {:ok, state}

      :none ->
        with {:ok, state} <- read_prev(path), do: {:ok, state}

      {:error, why} ->
        aside = "#{path}.corrupt-#{System.os_time(:millisecond)}"
        _ = File.rename(path, aside)
        Logger.error("LiveCov gateway: #{path} is unreadable (#{why}); moved to #{aside}")
        read_prev(path)
    end
  end

  defp read_prev(path) do
    case read(path <> ".prev") do
      {:ok, state} ->
        Logger.warning("LiveCov gateway: loaded the previous state generation #{path}.prev")
        {:ok, state}

      _ ->
        {:ok, %{}}
    end
  end

  defp read(path) do
    case File.read(path) do
      {:ok, <<@magic, @version::16, sum::binary-32, body::binary>>} ->
        if :crypto.hash(:sha256, body) == sum,
          do: safe_term(body),
          else: {:error, "checksum mismatch"}

      {:ok, <<@magic, v::16, _::binary>>} ->
        {:error, "format version #{v} is newer than this gateway (#{@version})"}

      {:ok, _} ->
        {:error, "not a LiveCov gateway state file"}

      {:error, :enoent} ->
        :none

      {:error, reason} ->
        {:error, :file.format_error(reason) |> to_string()}
    end
  end

  # Not `:safe`: the file is the gateway's own (checksummed above), and its atoms (field
  # names, statuses) need not exist yet in a VM that just started.
  defp safe_term(body) do
    case :erlang.binary_to_term(body) do
      %{} = state -> {:ok, state}
      _ -> {:error, "unexpected content"}
    end
  rescue
    ArgumentError -> {:error, "undecodable content"}
  end

  @doc "Where a finished run's snapshot of a service is kept."
  @spec run_path(Path.t(), String.t(), String.t()) :: Path.t()
  def run_path(dir, run_id, service),
    do: Path.join([dir, "runs", safe(run_id), safe(service) <> ".snapshot"])

  @doc "Writes a run's result snapshot of a service (atomically)."
  @spec save_run(Path.t(), String.t(), String.t(), Snapshot.t()) ::
          :ok | {:error, {atom, String.t()}}
  def save_run(dir, run_id, service, snap) do
    with {:ok, _} <- Snapshot.write(snap, run_path(dir, run_id, service)), do: :ok
  end

  @doc "Reads a run's result snapshot of a service."
  @spec load_run(Path.t(), String.t(), String.t()) ::
          {:ok, Snapshot.t()} | {:error, {atom, String.t()}}
  def load_run(dir, run_id, service), do: Snapshot.read(run_path(dir, run_id, service))

  @doc "A name made safe as one path segment (other bytes percent-encoded)."
  @spec safe(String.t()) :: String.t()
  def safe(name) do
    name
    |> URI.encode(&(&1 in ?a..?z or &1 in ?A..?Z or &1 in ?0..?9 or &1 in [?-, ?_]))
    |> case do
      "" -> "_"
      s -> s
    end
  end
end
