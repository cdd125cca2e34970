using MtlMoe.Engine;
namespace MtlMoe.Tests.Cuda;

/// <summary>CPU-vs-CUDA comparison helpers: relative error against the CPU result, NaN never passes.</summary>
static class CudaParity
{
    public static Device Gpu => Device.Cuda(0);

    /// <summary>Seeded standard-normal float32 inputs on the CPU.</summary>
    public static Tensor[] Inputs(int[][] shapes, int seed) =>
        shapes.Select((s, i) => Tensor.RandN(s, new Rng((ulong)(seed * 31 + i + 1)))).ToArray();

    /// <summary>max |gpu − cpu| / max(max |cpu|, 1e-6); +∞ when either side has a NaN or the shapes differ.</summary>
    public static double RelError(Tensor cpu, Tensor gpu)
    {
        if (!cpu.Shape.SequenceEqual(gpu.Shape)) return double.PositiveInfinity;
        var a = cpu.ToDoubleArray();
        var b = gpu.ToDoubleArray();
        double diff = 0, scale = 1e-6;
        for (int i = 0; i < a.Length; i++)
        {
            if (double.IsNaN(a[i]) || double.IsNaN(b[i])) return double.PositiveInfinity;
            if (double.IsInfinity(a[i]) || double.IsInfinity(b[i])) { if (a[i] != b[i]) return double.PositiveInfinity; continue; }
            diff = Math.Max(diff, Math.Abs(a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs(a[i]));
        }
        return diff / scale;
    }

    public static void AssertClose(string what, Tensor cpu, Tensor gpu, double tol)
    {
        Assert.That(gpu.Device, Is.EqualTo(Gpu), $"{what}: result not on the GPU");
        if (!cpu.DType.IsFloat())
        {
            Assert.That(gpu.ToDoubleArray(), Is.EqualTo(cpu.ToDoubleArray()), $"{what}: integer results differ");
            return;
        }
        var e = RelError(cpu, gpu);
        Assert.That(e, Is.LessThanOrEqualTo(tol), $"{what}: relative error {e:g3} > {tol:g3} (shape {Shapes.Format(cpu.Shape)})");
    }

    /// <summary>Bitwise equality of two float32 GPU results (determinism).</summary>
    public static void AssertSameBits(string what, Tensor a, Tensor b)
    {
        var x = a.ToArray<float>().Select(BitConverter.SingleToInt32Bits).ToArray();
        var y = b.ToArray<float>().Select(BitConverter.SingleToInt32Bits).ToArray();
        Assert.That(y, Is.EqualTo(x), $"{what}: two runs differ");
    }
}
