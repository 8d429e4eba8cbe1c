defmodule LiveCov.Runtime do
  @moduledoc false
  # What the running Erlang/OTP's `cover` does, in the three places where OTP 27 changed it.
  # Both generations are supported by one build; which one applies is read off the runtime
  # (the compiler's `sys_coverage:cover_transform/2`, new in OTP 27, comes with the rest):
  #
  #   | generation | rewrite                          | line analysis       | .coverdata          |
  #   |------------|----------------------------------|---------------------|---------------------|
  #   | :otp25     | LiveCov.Instrument.Munge (ours)  | one entry per site  | with clause records |
  #   | :otp27     | sys_coverage:cover_transform/2   | one entry per line  | no clause records   |

  @type generation :: :otp25 | :otp27

  @doc "The cover generation of the running OTP."
  @spec generation :: generation
  def generation, do: once(:generation, fn -> if sys_coverage?(), do: :otp27, else: :otp25 end)

  @doc """
  True when the runtime counts lines natively (`code:coverage_support/0`: OTP 27+ with the
  JIT). Its `cover` then counts with the VM's line counters, which never count code without
  a location (line 0, compiler-generated), so neither does LiveCov there.
  """
  @spec native_coverage? :: boolean
  def native_coverage? do
    once(:native_coverage, fn ->
      function_exported?(:code, :coverage_support, 0) and
        apply(:code, :coverage_support, []) == true
    end)
  end

  @doc "True when the running OTP has `sys_coverage:cover_transform/2` (OTP 27+)."
  @spec sys_coverage? :: boolean
  def sys_coverage? do
    Code.ensure_loaded?(:sys_coverage) and function_exported?(:sys_coverage, :cover_transform, 2)
  end

  @doc "The running OTP release as an integer (25, 27, ...)."
  @spec otp_release :: pos_integer
  def otp_release, do: :erlang.system_info(:otp_release) |> List.to_integer()

  # Facts of the running VM, computed once and kept in a persistent term.
  defp once(key, compute) do
    case :persistent_term.get({__MODULE__, key}, :unknown) do
      :unknown ->
        value = compute.()
        :persistent_term.put({__MODULE__, key}, value)
        value

      value ->
        value
    end
  end

  @doc "LiveCov's own version (`\"unknown\"` when its application is not loaded)."
  @spec live_cov_version :: String.t()
  def live_cov_version do
    case Application.spec(:live_cov, :vsn) do
      nil -> "unknown"
      vsn -> List.to_string(vsn)
    end
  end
end
