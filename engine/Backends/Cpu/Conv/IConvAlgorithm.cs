using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

/// <summary>The three passes of a conv2d: y from x and w, dx from dy and w, dw from x and dy.</summary>
internal enum ConvPass { Forward, BackwardData, BackwardWeights }

/// <summary>
/// The operands of one pass, dense NCHW arrays with the offset of element 0: A is x (forward, backward-weights) or dy
/// (backward-data); B is w (forward, backward-data) or dy (backward-weights); Out is y [N, O, Ho, Wo], dx [N, C, H, W]
/// or dw [O, Cg, kh, kw], allocated by the caller (cleared when the algorithm asks for it). With
/// <see cref="FlippedWeights"/> the pass is a forward whose w at B is stored [C, O, kh, kw] and read as
/// w′[o, c, t] = w[c, o, kh·kw − 1 − t] (stride-1 backward-data run as a forward, without a flipped copy).
/// </summary>
internal readonly record struct ConvArgs<T>(T[] A, int AOffset, T[] B, int BOffset, T[] Out, bool FlippedWeights = false)
    where T : unmanaged, INumber<T>;

/// <summary>
/// One way to compute a conv pass on the CPU. The algorithm table (<see cref="ConvAlgorithms"/>) asks the algorithms in
/// order whether they apply to a plan and pass and runs the first that does. Each algorithm lives in its own file, which
/// opens with the idea, the shapes it wins on with the measured speed-up, and what it is tested against.
/// </summary>
internal interface IConvAlgorithm
{
    /// <summary>Its name in options (<see cref="CpuBackendOptions.Disabled"/>), <c>MTLMOE_CPU_DISABLE</c> and Bench's <c>--ab</c>.</summary>
    string Name { get; }

    /// <summary>Whether it computes <paramref name="pass"/> of <paramref name="p"/> (dtype, shapes, machine, options).</summary>
    bool Applies(in ConvPlan p, ConvPass pass);

    /// <summary>Whether <paramref name="pass"/>'s output must be zero-filled before <see cref="Run{T}"/> (it adds into it).</summary>
    bool NeedsClearedOutput(ConvPass pass);

    /// <summary>Whether <see cref="Run{T}"/> reads a flipped kernel in place (<see cref="ConvArgs{T}.FlippedWeights"/>).</summary>
    bool ReadsFlippedWeights => false;

    /// <summary>Computes <paramref name="pass"/> of <paramref name="p"/>; the caller has checked <see cref="Applies"/>.</summary>
    void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> args) where T : unmanaged, INumber<T>;
}
