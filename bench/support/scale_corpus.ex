defmodule LiveCov.Bench.ScaleCorpus do
  @moduledoc false
  # Generator of bench/scale.exs's corpus (not part of the library): N Elixir modules of
  # about 100 executable lines each, in the shapes application code has (guards, case,
  # cond, with, pipelines with anonymous functions, comprehensions, maps, structs-like
  # maps, binaries, try/rescue, recursion over lists, multi-clause functions).
  #
  # Every module exports run/1, which calls each of its functions, so a run gives counts
  # to most lines (some branches stay unrun, as in real coverage).

  # 12 templates of 5-11 executable lines; a module uses 12 functions (templates rotating
  # with its index) with constants derived from the module index, so no two modules are the
  # same: about 100 executable lines per module.
  @templates 12
  @per_module 12

  @doc "The module name of corpus module `i`."
  def module_name(i), do: :"Elixir.LiveCovScale.M#{String.pad_leading("#{i}", 5, "0")}"

  @doc "The source text of corpus module `i`."
  def source(i) do
    kinds = for k <- 0..(@per_module - 1), do: rem(i + k * 7, @templates)
    funs = kinds |> Enum.with_index(1) |> Enum.map(fn {kind, j} -> fun(kind, j, i) end)
    calls = for j <- 1..@per_module, do: "    acc = f#{j}(acc) + acc\n"

    """
    defmodule #{inspect(module_name(i))} do
      @moduledoc false

      def run(x) do
        acc = x
    #{Enum.join(calls)}    rem(acc, 1_000_003)
      end

    #{Enum.join(funs, "\n")}
    end
    """
  end

  @doc """
  Writes the `n` sources under `dir/src` and compiles them in parallel into `dir/ebin`
  (debug_info on). Returns the ebin path. A directory holding a complete build of the same
  corpus (same generator, size and Elixir) is reused as is.
  """
  def build(dir, n) do
    src = Path.join(dir, "src")
    ebin = Path.join(dir, "ebin")
    stamp = Path.join(dir, "complete")

    if File.exists?(stamp) and length(Path.wildcard(Path.join(ebin, "*.beam"))) == n do
      {:reused, ebin}
    else
      File.rm_rf!(dir)
      File.mkdir_p!(src)
      File.mkdir_p!(ebin)

      files =
        for i <- 1..n do
          path = Path.join(src, "m#{String.pad_leading("#{i}", 5, "0")}.ex")
          File.write!(path, source(i))
          path
        end

      {:ok, _mods, _warnings} =
        Kernel.ParallelCompiler.compile_to_path(files, ebin, return_diagnostics: false)

      File.write!(stamp, "ok\n")
      {:built, ebin}
    end
  end

  # f<j>(x): an integer in, an integer out, never raises.
  defp fun(0, j, i) do
    """
      def f#{j}(x) when is_integer(x) and x > #{rem(i, 50)} do
        y = x * #{rem(i, 7) + 2} + #{j}
        z = rem(y, #{rem(i, 11) + 3})

        case z do
          0 -> y + 1
          1 -> y - 1
          _ ->
            w = div(y, 2)
            w + z
        end
      end

      def f#{j}(x), do: x + #{j}
    """
  end

  defp fun(1, j, i) do
    """
      def f#{j}(x) do
        list = Enum.to_list(1..#{rem(i, 9) + 4})

        list
        |> Enum.map(fn v -> v * x end)
        |> Enum.filter(fn v -> rem(v, #{rem(i, 3) + 2}) == 0 end)
        |> Enum.reduce(0, fn v, acc ->
          acc + v
        end)
      end
    """
  end

  defp fun(2, j, i) do
    """
      def f#{j}(x) do
        name = "item_\#{rem(x, #{rem(i, 13) + 5})}"
        upper = String.upcase(name)
        parts = String.split(upper, "_")
        joined = Enum.join(parts, "-")
        len = String.length(joined)

        if len > #{rem(i, 4) + 6} do
          len * 2
        else
          len
        end
      end
    """
  end

  defp fun(3, j, i) do
    """
      def f#{j}(x) do
        m = %{a: x, b: x + #{rem(i, 17)}, c: 0}
        m = Map.update!(m, :c, fn c -> c + m.a end)
        m = Map.put(m, :d, m.b * 2)
        keys = Map.keys(m)
        total = Enum.sum(Map.values(m))
        Map.get(m, :missing, length(keys)) + total
      end
    """
  end

  defp fun(4, j, i) do
    """
      def f#{j}(x) do
        cond do
          x < #{rem(i, 10)} ->
            x + 100

          rem(x, #{rem(i, 5) + 2}) == 0 ->
            div(x, 2)

          x > 1_000_000 ->
            x - 1_000_000

          true ->
            x * 3
        end
      end
    """
  end

  defp fun(5, j, i) do
    """
      def f#{j}(x) do
        walk#{j}(Enum.to_list(0..rem(x, #{rem(i, 8) + 3})), 0)
      end

      defp walk#{j}([], acc), do: acc

      defp walk#{j}([h | t], acc) when rem(h, 2) == 0 do
        walk#{j}(t, acc + h)
      end

      defp walk#{j}([h | t], acc) do
        next = acc - h + #{j}
        walk#{j}(t, next)
      end
    """
  end

  defp fun(6, j, i) do
    """
      def f#{j}(x) do
        with {:ok, a} <- check#{j}(x),
             {:ok, b} <- check#{j}(a + #{rem(i, 19)}) do
          a + b
        else
          {:error, reason} -> reason
        end
      end

      defp check#{j}(v) when v > #{rem(i, 30) + 1_000}, do: {:error, 0}
      defp check#{j}(v), do: {:ok, v + 1}
    """
  end

  defp fun(7, j, i) do
    """
      def f#{j}(x) do
        try do
          y = #{rem(i, 23) + 1} - rem(x, #{rem(i, 23) + 2})
          z = div(x, y)
          z + 1
        rescue
          ArithmeticError ->
            #{j}
        end
      end
    """
  end

  defp fun(8, j, i) do
    """
      def f#{j}(x) do
        pairs =
          for a <- 1..#{rem(i, 5) + 2},
              b <- 1..3,
              rem(a + b + x, 2) == 0 do
            {a, b}
          end

        Enum.reduce(pairs, 0, fn {a, b}, acc -> acc + a * b end)
      end
    """
  end

  defp fun(9, j, i) do
    """
      def f#{j}(x) do
        bin = <<x::32, #{rem(i, 200)}::8, "tail">>
        <<a::16, b::16, c::8, rest::binary>> = bin
        size = byte_size(rest)

        case rest do
          "tail" -> a + b + c + size
          _ -> 0
        end
      end
    """
  end

  defp fun(10, j, i) do
    """
      def f#{j}(x) do
        state = %{count: 0, sum: 0, max: 0}

        state =
          Enum.reduce(1..#{rem(i, 6) + 3}, state, fn v, s ->
            s
            |> Map.update!(:count, &(&1 + 1))
            |> Map.update!(:sum, &(&1 + v * x))
            |> Map.update!(:max, &max(&1, v))
          end)

        state.sum + state.count * state.max
      end
    """
  end

  defp fun(11, j, i) do
    """
      def f#{j}(x) do
        kind = classify#{j}(rem(x, 4))
        label = Atom.to_string(kind)
        String.length(label) + #{rem(i, 9)}
      end

      defp classify#{j}(0), do: :zero
      defp classify#{j}(1), do: :one
      defp classify#{j}(2), do: :two

      defp classify#{j}(_other) do
        :many
      end
    """
  end
end
