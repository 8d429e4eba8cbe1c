defmodule LiveCov.Bench.Helpers do
  @moduledoc false
  # Shared by the bench programs, which load it with
  # `Code.require_file("support/bench_helpers.exs", __DIR__)` (not a program itself: the bench
  # task runs only bench/*.exs).

  @doc ~S(The CPU model named in /proc/cpuinfo, or "unknown CPU".)
  def cpu_model do
    with {:ok, text} <- File.read("/proc/cpuinfo"),
         [_, model] <- Regex.run(~r/model name\s*:\s*(.+)/, text) do
      String.trim(model)
    else
      _ -> "unknown CPU"
    end
  end

  @doc ~S(A number rounded to an integer, with thousands separators: `1234567.4` -> "1,234,567".)
  def fmt_int(x),
    do: x |> round() |> Integer.to_string() |> String.replace(~r/\B(?=(\d{3})+(?!\d))/, ",")
end
