defmodule LiveCov.Test.FixtureBuild do
  @moduledoc false
  # Compiles Erlang fixture sources (with debug_info) into a fresh directory on the code path.

  def erlang(sources, opts \\ []) do
    dir = Path.join(System.tmp_dir!(), "live_cov_fx_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)

    for src <- List.wrap(sources) do
      extra = Keyword.get(opts, :compile, [:debug_info])

      {:ok, mod} =
        :compile.file(String.to_charlist(src), [
          {:outdir, String.to_charlist(dir)},
          :return_errors | extra
        ])

      :code.purge(mod)
      :code.delete(mod)
      :code.purge(mod)
    end

    :code.add_patha(String.to_charlist(dir))
    dir
  end
end
