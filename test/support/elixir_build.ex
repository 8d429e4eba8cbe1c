defmodule LiveCov.Test.ElixirBuild do
  @moduledoc """
  Compiles Elixir test fixtures into a directory with debug info forced on, the same way on
  Elixir 1.14 to 1.20 (1.15+ return diagnostics as a map, 1.20 warns without
  `return_diagnostics: true`, and `mix test` may leave `debug_info` off).
  """

  @doc "Compiles `files` into `dir`; returns `{modules, warnings}` or raises."
  def compile_to_path!(files, dir) do
    previous = Code.compiler_options()
    Code.compiler_options(debug_info: true, ignore_module_conflict: true)

    try do
      case Kernel.ParallelCompiler.compile_to_path(files, dir, return_diagnostics: true) do
        {:ok, modules, warnings} ->
          {modules, warnings(warnings)}

        {:error, errors, _warnings} ->
          raise "cannot compile #{inspect(files)}: #{inspect(errors)}"
      end
    after
      Code.compiler_options(Map.take(Map.new(previous), [:debug_info, :ignore_module_conflict]))
    end
  end

  defp warnings(%{} = diagnostics),
    do: Map.get(diagnostics, :compile_warnings, []) ++ Map.get(diagnostics, :runtime_warnings, [])

  defp warnings(list) when is_list(list), do: list
end
