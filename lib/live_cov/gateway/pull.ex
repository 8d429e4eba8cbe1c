defmodule LiveCov.Gateway.Pull do
  @moduledoc false
  # One round of pulls: the due sources (all with `force: true`, else those whose backoff
  # has passed) are fetched in parallel (`LiveCov.Gateway.Puller`, at most `max_concurrency`
  # at once, each within `timeout`), and each answer is absorbed into its source
  # (`LiveCov.Gateway.Source.absorb/5`) or recorded as a failure with the next attempt's time.

  require Logger

  alias LiveCov.Gateway.{Puller, Source}

  @doc """
  Pulls `names` of `sources` (`%{name => Source.t()}`). Options: `force`, `reset` (dump and
  reset the sources). Returns the updated sources and the names whose data changed.
  """
  @spec run(%{String.t() => Source.t()}, [String.t()], LiveCov.Gateway.Config.t(), keyword) ::
          {%{String.t() => Source.t()}, [String.t()]}
  def run(sources, names, config, opts) do
    force = Keyword.get(opts, :force, false)
    reset = Keyword.get(opts, :reset, false)
    %{timeout: timeout, max_concurrency: conc} = config
    t = now()
    due = for n <- names, s = sources[n], s != nil, force or s.next_at <= t, do: s

    results =
      Task.async_stream(due, &fetch(&1, timeout, reset),
        max_concurrency: conc,
        timeout: Puller.max_time(timeout, reset: reset),
        on_timeout: :kill_task,
        ordered: true
      )

    due
    |> Enum.zip(results)
    |> Enum.reduce({sources, []}, fn {s, result}, {acc, changed} ->
      t = now()

      case result do
        {:ok, {:ok, snap, bin, git}} ->
          new = Source.absorb(s, snap, bin, t, reset: reset, git: git)
          {Map.put(acc, s.name, new), if(same?(s, new), do: changed, else: [s.name | changed])}

        {:ok, {:error, reason}} ->
          {Map.put(acc, s.name, failed(s, reason, t, config)), changed}

        {:exit, _} ->
          reason = {:timeout, "#{s.name} did not answer within #{timeout} ms"}
          {Map.put(acc, s.name, failed(s, reason, t, config)), changed}
      end
    end)
  end

  defp fetch(s, timeout, reset) do
    case Puller.fetch(s, timeout, reset: reset) do
      {:ok, snap, bin} ->
        known = Map.has_key?(s.builds, Source.build_id(snap))
        git = if known or Source.git(snap), do: nil, else: Puller.git_commit(s, timeout)
        {:ok, snap, bin, git}

      error ->
        error
    end
  end

  defp failed(s, reason, t, config) do
    if s.failures == 0,
      do: Logger.warning("LiveCov gateway: pull of #{s.name} failed: #{elem(reason, 1)}")

    wait = Source.backoff(s.failures + 1, config.backoff, config.max_backoff)
    Source.failed(s, reason, t, t + wait)
  end

  # Unchanged data: same life, same builds and counters (only the snapshot time moved).
  defp same?(old, new) do
    old.current != nil and new.current != nil and old.retired_bin == new.retired_bin and
      old.life == new.life and old.current.counts == new.current.counts
  end

  defp now, do: System.os_time(:millisecond)
end
