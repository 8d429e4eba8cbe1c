defmodule LiveCov.Gateway.Source do
  @moduledoc false
  # What the gateway knows of one source (an agent or a distributed-Erlang node): pure
  # functions, no I/O.
  #
  # A source's snapshots are cumulative since its last reset, so the gateway keeps the
  # latest one (`current`, replaced at every pull, never added). When the source starts a
  # new life - the snapshot's origin (node, OS pid) changed, a counter went down, or a build
  # it had disappeared (restart, reset by someone else, re-instrumentation) - the previous
  # life's last snapshot is folded into `retired` first, so nothing pulled is lost:
  # `total/1 = merge(retired, current)` only ever grows.
  #
  # Each life's set of module builds is recorded in `builds` (`build_id/1`).

  alias LiveCov.Snapshot

  defstruct [:name, :kind, :service, :url, :token, :node, :cookie] ++
              [
                current: nil,
                current_bin: nil,
                retired: nil,
                retired_bin: nil,
                life: nil,
                status: :pending,
                last_ok: nil,
                last_attempt: nil,
                last_error: nil,
                failures: 0,
                next_at: 0,
                pulls: 0,
                lives: 0,
                builds: %{},
                build: nil
              ]

  @type t :: %__MODULE__{}

  # Fields persisted by LiveCov.Gateway.Store (the rest comes from the configuration).
  @persisted [:current_bin, :retired_bin, :life, :last_ok, :pulls, :lives, :builds, :build] ++
               [:last_error]

  @doc "A source from its configuration entry."
  @spec new(map) :: t
  def new(entry),
    do:
      struct(__MODULE__, Map.take(entry, [:name, :kind, :service, :url, :token, :node, :cookie]))

  @doc "The fields worth persisting."
  @spec dump(t) :: map
  def dump(%__MODULE__{} = s), do: Map.take(s, @persisted)

  @doc "Restores persisted fields (as `dump/1`) into a configured source, decoding snapshots."
  @spec restore(t, map) :: {:ok, t} | {:error, {atom, String.t()}}
  def restore(%__MODULE__{} = s, data) do
    with {:ok, current} <- decode(data[:current_bin]),
         {:ok, retired} <- decode(data[:retired_bin]) do
      s = struct(s, Map.take(data, @persisted))

      {:ok,
       %{
         s
         | current: current,
           retired: retired,
           status: if(current || retired, do: :stale, else: :pending)
       }}
    end
  end

  defp decode(nil), do: {:ok, nil}
  defp decode(bin), do: Snapshot.decode(bin)

  @doc """
  Takes a pulled snapshot (`bin` is its encoding). With `reset: true` the source was
  dumped and reset by this pull: the snapshot is folded into `retired` at once.
  """
  @spec absorb(t, Snapshot.t(), binary, integer, keyword) :: t
  def absorb(%__MODULE__{} = s, %Snapshot{} = snap, bin, now, opts \\ []) do
    life = life_of(snap)
    new_life? = s.current != nil and (life != s.life or not monotonic?(s.current, snap))
    s = if new_life?, do: retire(s), else: s
    s = if s.life != life or s.lives == 0, do: %{s | lives: s.lives + 1}, else: s
    id = build_id(snap)

    builds =
      Map.update(s.builds, id, new_build(snap, now, opts[:git]), fn b ->
        %{b | last_seen: now, git: git(snap) || opts[:git] || b.git}
      end)

    s = %{
      s
      | current: snap,
        current_bin: bin,
        life: life,
        status: :up,
        last_ok: now,
        last_attempt: now,
        last_error: nil,
        failures: 0,
        pulls: s.pulls + 1,
        builds: builds,
        build: id
    }

    if Keyword.get(opts, :reset, false), do: retire(s), else: s
  end

  defp new_build(snap, now, git) do
    %{
      first_seen: now,
      last_seen: now,
      modules: snap.metas |> Map.values() |> Enum.map(& &1.module) |> Enum.uniq() |> length(),
      hashes: snap.metas |> Map.keys() |> Enum.sort(),
      git: git(snap) || git
    }
  end

  @doc "Records a failed pull: the data is kept, the next attempt waits (`next_at`)."
  @spec failed(t, {atom, String.t()}, integer, integer) :: t
  def failed(%__MODULE__{} = s, {_kind, message}, now, next_at) do
    %{
      s
      | status: :down,
        last_error: message,
        last_attempt: now,
        failures: s.failures + 1,
        next_at: next_at
    }
  end

  @doc "Folds the current life into `retired` (its encoding is refreshed)."
  @spec retire(t) :: t
  def retire(%__MODULE__{current: nil} = s), do: s

  def retire(%__MODULE__{} = s) do
    retired = if s.retired, do: Snapshot.merge(s.retired, s.current), else: s.current
    retired = %{retired | provenance: Enum.take(retired.provenance, -20)}
    {:ok, bin} = Snapshot.encode(retired)
    %{s | retired: retired, retired_bin: bin, current: nil, current_bin: nil}
  end

  @doc "Everything pulled from the source: `retired` + `current` (nil when nothing)."
  @spec total(t) :: Snapshot.t() | nil
  def total(%__MODULE__{retired: nil, current: c}), do: c
  def total(%__MODULE__{retired: r, current: nil}), do: r
  def total(%__MODULE__{retired: r, current: c}), do: Snapshot.merge(r, c)

  @doc """
  The life of a snapshot's writer: `{node, os_pid, boot id}` of its first provenance entry
  (the boot id tells a restart apart even when a container reuses the OS pid).
  """
  @spec life_of(Snapshot.t()) :: {String.t(), String.t(), String.t() | nil} | nil
  def life_of(%Snapshot{provenance: [o | _]}) do
    boot = o |> Map.get(:labels, %{}) |> Map.get("live_cov_boot")
    {to_string(o.node), to_string(o.os_pid), boot}
  end

  def life_of(_), do: nil

  @doc """
  True when `later` can follow `earlier` in one life: every build of `earlier` is in
  `later`, same size, and no counter went down.
  """
  @spec monotonic?(Snapshot.t(), Snapshot.t()) :: boolean
  def monotonic?(%Snapshot{counts: before}, %Snapshot{counts: later}) do
    Enum.all?(before, fn {hash, a} ->
      case Map.fetch(later, hash) do
        {:ok, b} when byte_size(a) == byte_size(b) -> not_below?(a, b)
        _ -> false
      end
    end)
  end

  defp not_below?(<<a::little-64, ra::binary>>, <<b::little-64, rb::binary>>),
    do: b >= a and not_below?(ra, rb)

  defp not_below?(<<>>, <<>>), do: true

  @doc "A short id of a snapshot's set of module builds (12 hex digits)."
  @spec build_id(Snapshot.t()) :: String.t()
  def build_id(%Snapshot{metas: metas}) do
    digest = metas |> Map.keys() |> Enum.sort() |> then(&:crypto.hash(:sha256, &1))
    digest |> binary_part(0, 6) |> Base.encode16(case: :lower)
  end

  @doc "The git commit a snapshot's provenance labels name (`git_commit`, `git` or `commit`)."
  @spec git(Snapshot.t()) :: String.t() | nil
  def git(%Snapshot{provenance: provenance}) do
    Enum.find_value(provenance, fn %{labels: labels} ->
      labels["git_commit"] || labels["git"] || labels["commit"]
    end)
  end

  @doc "The wait before the next attempt after `failures` consecutive failures."
  @spec backoff(pos_integer, non_neg_integer, non_neg_integer) :: non_neg_integer
  def backoff(failures, base, max), do: min(max, base * Integer.pow(2, min(failures - 1, 30)))

  @doc "A summary for the API and the dashboard (no token, no snapshot)."
  @spec info(t) :: map
  def info(%__MODULE__{} = s) do
    %{
      name: s.name,
      kind: s.kind,
      service: s.service,
      url: s.url,
      node: s.node && Atom.to_string(s.node),
      status: s.status,
      last_ok: s.last_ok,
      last_attempt: s.last_attempt,
      last_error: s.last_error,
      failures: s.failures,
      pulls: s.pulls,
      lives: s.lives,
      build: s.build,
      builds: Map.new(s.builds, fn {id, b} -> {id, Map.delete(b, :hashes)} end)
    }
  end
end
