defmodule LiveCov.Counter.LineCounters do
  @moduledoc false
  # The native backend (OTP 27+ with the JIT): each site is an `executable_line` instruction
  # numbered as `:cover` numbers it (index + 1), compiled with `force_line_counters`, so the
  # VM increments a line counter inline, exactly as for `:cover`-compiled code. The counters
  # are read with `code:get_coverage(cover_id_line, Module)` and moved into the module's
  # slot as deltas by `LiveCov.Counter.Harvester`; they are never reset while LiveCov runs.

  @behaviour LiveCov.Counter.Backend

  @impl true
  def name, do: :native

  @impl true
  def check do
    cond do
      not LiveCov.Runtime.native_coverage?() ->
        {:error,
         {:native_unavailable,
          "backend: :native needs a runtime that counts lines itself (OTP 27 or later with " <>
            "the JIT; this is OTP #{LiveCov.Runtime.otp_release()}" <>
            "#{if LiveCov.Runtime.otp_release() >= 27, do: " without it", else: ""}): " <>
            "use backend: :auto or :nif"}}

      true ->
        LiveCov.Table.check()
    end
  end

  @impl true
  def site_expr(_slot, index, line), do: {:executable_line, line, index + 1}

  @impl true
  def compile_options, do: [:force_line_counters]
end
