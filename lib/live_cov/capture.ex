defmodule LiveCov.Capture do
  @moduledoc false
  # Snapshots of this node's live state: the instrumented modules (`LiveCov.Instrumented`)
  # and a reading of the counter table (`LiveCov.Table`), with provenance. The data type and
  # its pure operations are `LiveCov.Snapshot`.

  alias LiveCov.{Counter, Instrumented, ModuleInfo, Snapshot, Table}
  alias LiveCov.Snapshot.Meta

  @doc """
  A snapshot of this node's counter table for every instrumented module.

  Options:

    * `:labels` - a map or keyword of provenance labels (test run id, service, git commit, ...),
      added to `config :live_cov, :labels`.
    * `:take` - `true` reads and zeroes the counters in one step, exactly (no bump lost or
      counted twice while others keep bumping); see `LiveCov.dump_and_reset/0`.
    * `:modules` - only these modules.
    * `:counts` - `:local` (default: this node's table) or `:all`: the counts reports see
      (`LiveCov.Counts`: this node, covered nodes, imported data of the same build).

  Modules whose metadata cannot be encoded are listed in `skipped` with the reason.
  """
  @spec build(keyword) :: Snapshot.t()
  def build(opts \\ []) do
    take = Keyword.get(opts, :take, false)
    # With take, read (and zero) the table first: a module committed to the registry after
    # this moment has its counts in the table still, not lost.
    table = if take, do: Counter.snapshot(take: true), else: nil
    infos = select(Instrumented.modules(), opts[:modules])
    table = table || Counter.snapshot()

    if take do
      put_back_unknown(table, infos)
      # What was taken is this node's table: the other sources were not reset.
      from_infos(infos, table, Keyword.delete(opts, :counts))
    else
      from_infos(infos, table, opts)
    end
  end

  @doc """
  A snapshot of the given modules from a reading of the counter table
  (`LiveCov.Counter` `snapshot/1`: `%{slot => packed_counts}`). Options `:labels` and `:counts`
  as in `build/1`. A module whose slot is not in the reading has zero counts.
  The pruned sites of modules in `mode: :coverage` (`ModuleInfo` `pruned`) are recorded in
  `pruned`.
  """
  @spec from_infos([ModuleInfo.t()], %{non_neg_integer => binary}, keyword) :: Snapshot.t()
  def from_infos(infos, table, opts \\ []) do
    counts =
      case Keyword.get(opts, :counts, :local) do
        :all -> LiveCov.Counts.collect(infos) |> Map.new(fn {m, c} -> {m, Table.encode(c)} end)
        _ -> nil
      end

    {metas, skipped} = Snapshot.metas_of(infos)

    packed =
      for {info, %Meta{hash: h}} <- Enum.zip(infos, metas), h != nil, into: %{} do
        bin =
          case counts do
            nil -> Map.get(table, info.slot) || zeros(ModuleInfo.size(info))
            all -> Map.fetch!(all, info.module)
          end

        {h, bin}
      end

    pruned =
      for {info, %Meta{hash: h}} <- Enum.zip(infos, metas),
          h != nil,
          sites = pruned_of(info),
          sites != [],
          into: %{},
          do: {h, sites}

    %Snapshot{
      provenance: [origin(Keyword.put(opts, :backend, Instrumented.backend_of(infos)))],
      metas: for(%Meta{hash: h} = m <- metas, h != nil, into: %{}, do: {h, m}),
      counts: packed,
      pruned: pruned,
      skipped: skipped
    }
  end

  # The sorted pruned site indices of a module (none for modules that were never pruned).
  defp pruned_of(info) do
    case Map.get(info, :pruned) do
      nil -> []
      sites -> sites |> Enum.to_list() |> Enum.sort()
    end
  end

  defp select(infos, nil), do: infos
  defp select(infos, modules), do: Enum.filter(infos, &(&1.module in List.wrap(modules)))

  # Counts taken from slots no module is registered under (yet) go back to the table, so a
  # module being committed while we take is counted next time rather than lost.
  defp put_back_unknown(table, infos) do
    known = MapSet.new(infos, & &1.slot)

    for {slot, bin} <- table,
        not MapSet.member?(known, slot),
        bin != zeros(div(byte_size(bin), 8)) do
      _ = Counter.add(slot, bin)
    end

    :ok
  end

  defp zeros(n), do: :binary.copy(<<0::64>>, n)

  @boot_label "live_cov_boot"

  @doc """
  A random id of this VM's life, recorded in every snapshot's provenance under the
  `"live_cov_boot"` label: a collector can tell a restarted node (same node name, maybe the
  same OS pid in a container) from the same node's later snapshot.
  """
  @spec boot_id() :: String.t()
  def boot_id do
    case :persistent_term.get({__MODULE__, :boot_id}, nil) do
      nil ->
        id = Base.encode16(:crypto.strong_rand_bytes(8), case: :lower)
        :persistent_term.put({__MODULE__, :boot_id}, id)
        id

      id ->
        id
    end
  end

  @doc """
  The provenance entry of a snapshot made here now (`labels` as in `build/1`; `backend`, the
  snapshot's modules' `LiveCov.Instrumented.backend_of/1`, default: every instrumented
  module's).
  """
  @spec origin(keyword) :: Snapshot.origin()
  def origin(opts \\ []) do
    labels =
      Application.get_env(:live_cov, :labels, [])
      |> Enum.concat(Keyword.get(opts, :labels, []))
      |> Map.new(fn {k, v} -> {to_string(k), to_string(v)} end)
      |> Map.put_new(@boot_label, boot_id())
      |> Map.put_new("backend", Atom.to_string(opts[:backend] || Instrumented.backend()))

    %{
      node: Atom.to_string(node()),
      os_pid: System.pid(),
      time: System.os_time(:millisecond),
      labels: labels
    }
  end

  @doc "The hashes of the builds instrumented here (for `Snapshot.choose/2`'s `loaded:`)."
  def loaded_hashes do
    {metas, _} = Snapshot.metas_of(Instrumented.modules())
    MapSet.new(for %Meta{hash: h} <- metas, h != nil, do: h)
  end

  @doc """
  Adds the counts of a dump (`build(take: true)`) back to the table, for the modules still
  instrumented with the same number of sites: a dump that could not be delivered is not
  lost.
  """
  @spec give_back(Snapshot.t()) :: :ok
  def give_back(%Snapshot{} = snap) do
    for {hash, bin} <- snap.counts,
        meta = snap.metas[hash],
        info = Instrumented.lookup(meta.module),
        info != nil and byte_size(bin) == 8 * ModuleInfo.size(info) do
      LiveCov.Counter.add(info.slot, bin)
    end

    :ok
  end
end
