defmodule LiveCov.Counter do
  @moduledoc false
  # Where an instrumented module's counts live and how they are read, taken and reset.
  #
  # Every instrumented module has a slot in the NIF's sharded table (`LiveCov.Table`): one
  # counter per bump site. What bumps those counters is the module's counter backend
  # (`LiveCov.Counter.Backend`, chosen with `backend:`):
  #
  #   * `:nif` (`LiveCov.Counter.Nif`) - each site calls `LiveCov.Native.bump(slot, index)`;
  #   * `:native` (`LiveCov.Counter.LineCounters`, OTP 27+ with native coverage) - each site
  #     is one of the runtime's own line counters, as `:cover` compiles it; a harvest
  #     (`LiveCov.Counter.Harvester`) moves their growth into the slot.
  #
  # Every read here harvests first, so all that is built on the table (snapshots, exact
  # takes, per-test deltas, node sums, exports) sees one kind of counter whatever bumped it.
  # This module works without the `:live_cov` application (covered nodes use it too).

  alias LiveCov.Counter.{Harvester, LineCounters, Nif}
  alias LiveCov.Table

  @type slot :: non_neg_integer
  @type name :: :nif | :native
  @type error :: {:error, {atom, String.t()}}

  @backends %{nif: Nif, native: LineCounters}

  @doc "The backend module of a backend name."
  @spec backend(name) :: module
  def backend(name), do: Map.fetch!(@backends, name)

  @doc """
  The backend a `backend:` option asks for, on this runtime, for modules instrumented in
  `mode` (`:counts` or `:coverage`). `:auto` (the default, or the application environment's
  `:backend`) is `:native` where the runtime counts lines itself and `mode` is `:counts`,
  `:nif` elsewhere. `:native` is refused where the runtime cannot count lines, and for
  `mode: :coverage`: adaptive coverage reloads modules as their sites run, and the runtime's
  line counters of a replaced version die with it, so a process still running that version
  would hit lines nobody records; NIF bumps go on counting into the same slot.
  """
  @spec resolve(term, :counts | :coverage) :: {:ok, name} | error
  def resolve(choice \\ nil, mode \\ :counts)
  def resolve(nil, mode), do: resolve(Application.get_env(:live_cov, :backend, :auto), mode)

  def resolve(:auto, :counts),
    do: if(LineCounters.check() == :ok, do: {:ok, :native}, else: with_check(:nif))

  def resolve(:auto, :coverage), do: with_check(:nif)

  def resolve(:native, :coverage) do
    {:error,
     {:invalid_option,
      "backend: :native cannot run mode: :coverage (adaptive coverage swaps code as sites " <>
        "run, and the runtime's line counters of a replaced version die with it): use " <>
        "backend: :auto or :nif, whose bumps pruning removes"}}
  end

  def resolve(name, _mode) when name in [:nif, :native], do: with_check(name)

  def resolve(other, _mode) do
    {:error,
     {:invalid_option,
      "backend: #{inspect(other)} is not a LiveCov counter backend; use :auto, :native " <>
        "(the runtime's line counters, OTP 27+) or :nif"}}
  end

  @doc """
  The backend named by `opts[:backend]` when it is already `:nif` or `:native`, else the one
  `resolve/2` picks by default (`:nif` if that fails): for code that compiles outside
  `LiveCov.Pipeline` (tests, benchmarks) or keys a cache entry.
  """
  @spec name_in(keyword) :: name
  def name_in(opts) do
    case Keyword.get(opts, :backend) do
      name when name in [:nif, :native] ->
        name

      _ ->
        case resolve(nil, Keyword.get(opts, :mode, :counts)) do
          {:ok, name} -> name
          _ -> :nif
        end
    end
  end

  defp with_check(name) do
    with :ok <- backend(name).check(), do: {:ok, name}
  end

  @doc "Moves the growth of every natively counted slot into the table."
  @spec harvest() :: :ok
  def harvest, do: Harvester.harvest(:all)

  @doc "The counts of a slot, in site order."
  @spec read(slot) :: {:ok, [non_neg_integer]} | error
  def read(slot), do: with_harvest(slot, fn -> Table.read(slot) end)

  @doc "The counts of a slot as a packed binary."
  @spec read_binary(slot) :: {:ok, binary} | error
  def read_binary(slot), do: with_harvest(slot, fn -> Table.read_binary(slot) end)

  @doc "Reads and zeroes a slot in one step: no concurrent bump is lost or counted twice."
  @spec take(slot) :: {:ok, [non_neg_integer]} | error
  def take(slot), do: with_harvest(slot, fn -> Table.take(slot) end)

  @doc "Zeroes one slot (what was counted before the call is gone)."
  @spec reset(slot) :: :ok | error
  def reset(slot), do: with_harvest(slot, fn -> Table.reset(slot) end)

  @doc "Zeroes every slot."
  @spec reset_all() :: :ok
  def reset_all do
    :ok = harvest()
    Table.reset_all()
  end

  @doc "Every live slot: `%{slot => packed counts}`; `take: true` zeroes as it reads."
  @spec snapshot(keyword) :: %{slot => binary}
  def snapshot(opts \\ []) do
    :ok = harvest()
    Table.snapshot(opts)
  end

  @doc "Adds counts to a slot (an import, counts collected elsewhere)."
  @spec add(slot, [non_neg_integer] | binary) :: :ok | error
  defdelegate add(slot, counts), to: Table

  @doc "A fresh slot of `nsites` zeroed counters."
  @spec register(non_neg_integer) :: {:ok, slot} | error
  defdelegate register(nsites), to: Table

  @doc "A fresh slot under a given id (a replica of another node's slot)."
  @spec register_at(slot, non_neg_integer) :: {:ok, slot} | error
  defdelegate register_at(slot, nsites), to: Table

  @doc "Installs `slot` only if its id was never used in this VM (see `LiveCov.Table.claim/2`)."
  @spec claim(slot, non_neg_integer) :: {:ok, slot} | error
  defdelegate claim(slot, nsites), to: Table

  @doc "A fresh slot whose id is at least `min` (see `LiveCov.Table.register_from/2`)."
  @spec register_from(non_neg_integer, non_neg_integer) :: {:ok, slot} | error
  defdelegate register_from(min, nsites), to: Table

  @doc "Forgets a slot (code still bumping it is harmless)."
  @spec unregister(slot) :: :ok | error
  defdelegate unregister(slot), to: Table

  @doc """
  Before `module`'s code on `slot` is replaced or restored: a last harvest, then the slot
  stops following the runtime's counters (no-op for a slot the NIF counts).
  """
  @spec detach(slot) :: :ok
  def detach(slot), do: Harvester.detach(slot)

  @doc """
  After `module`'s code counted by `backend` is loaded on `slot`: a `:native` slot follows the
  new code's line counters (`since: :load`, they start at zero) or, when a load failed and the
  old code stays, the current values (`since: :now`).
  """
  @spec attach(slot, module, name, :load | :now) :: :ok | error
  def attach(slot, module, backend, since \\ :load)
  def attach(_slot, _module, :nif, _since), do: :ok
  def attach(slot, module, :native, since), do: Harvester.attach(slot, module, since)

  defp with_harvest(slot, fun) do
    :ok = Harvester.harvest([slot])
    fun.()
  end
end
