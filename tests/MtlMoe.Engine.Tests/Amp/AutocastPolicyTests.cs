using MtlMoe.Engine;
using MtlMoe.Engine.Amp;

namespace MtlMoe.Tests.Amp;

/// <summary>The autocast op table and the per-thread scopes.</summary>
public class AutocastPolicyTests
{
    const DType F32 = DType.Float32, BF = DType.BFloat16, F64 = DType.Float64, I64 = DType.Int64;

    static DType[] Cast(string op, params DType[] inputs) => AutocastPolicy.CastFor(op, inputs, BF);

    [TestCase("conv2d")]
    [TestCase("matmul")]
    [TestCase("linear")]
    public void TensorCoreOpsRunInBf16(string op)
    {
        Assert.That(AutocastPolicy.RuleOf(op), Is.EqualTo(AmpRule.LowPrecision));
        Assert.That(Cast(op, F32, F32), Is.EqualTo(new[] { BF, BF }));
        Assert.That(Cast(op, BF, F32), Is.EqualTo(new[] { BF, BF }));
    }

    // What must stay float32: losses, softmax, reductions, the gating logits, noise and aux loss, optimizer.
    [TestCase("softmax")]
    [TestCase("log_softmax")]
    [TestCase("cross_entropy")]
    [TestCase("sum")]
    [TestCase("mean")]
    [TestCase("moe_gate_logits")]
    [TestCase("moe_gating")]
    [TestCase("moe_noise")]
    [TestCase("moe_aux_loss")]
    [TestCase("sgd_step")]
    public void AccuracyCriticalOpsStayFloat32(string op)
    {
        Assert.That(AutocastPolicy.RuleOf(op), Is.EqualTo(AmpRule.Float32));
        Assert.That(Cast(op, BF, F32), Is.EqualTo(new[] { F32, F32 }));
    }

    [Test]
    public void BatchNormKeepsTheActivationAndFloat32Parameters()
    {
        // (x, weight, bias, running mean, running var)
        Assert.That(Cast("batch_norm2d", BF, F32, F32, F32, F32), Is.EqualTo(new[] { BF, F32, F32, F32, F32 }));
        Assert.That(Cast("batch_norm2d_add_relu", BF, BF, F32), Is.EqualTo(new[] { BF, F32, F32 }));
        Assert.That(Cast("batch_norm2d", F32, F32), Is.EqualTo(new[] { F32, F32 }), "a float32 activation is not narrowed");
    }

    [Test]
    public void PointwisePoolingAndRoutingFollowTheActivation()
    {
        Assert.That(Cast("relu", BF), Is.EqualTo(new[] { BF }));
        Assert.That(Cast("relu", F32), Is.EqualTo(new[] { F32 }));
        Assert.That(Cast("max_pool2d", BF), Is.EqualTo(new[] { BF }));
        Assert.That(Cast("moe_dispatch", BF, DType.Int32), Is.EqualTo(new[] { BF, DType.Int32 }));
        Assert.That(Cast("moe_combine", BF, F32), Is.EqualTo(new[] { BF, F32 }), "bf16 expert outputs with float32 gates");
        Assert.That(Cast("add", BF, BF), Is.EqualTo(new[] { BF, BF }));
        Assert.That(Cast("add", BF, F32), Is.EqualTo(new[] { F32, F32 }), "a mixed pair promotes");
    }

    [Test]
    public void Float64AndIntegersAreNeverCast()
    {
        Assert.That(Cast("matmul", F64, F64), Is.EqualTo(new[] { F64, F64 }));
        Assert.That(Cast("cross_entropy", BF, I64), Is.EqualTo(new[] { F32, I64 }));
        Assert.That(Cast("add", F64, BF), Is.EqualTo(new[] { F64, BF }), "only float32 triggers the promotion");
    }

    [Test]
    public void WithAutocastOffNothingChanges()
    {
        Assert.That(Autocast.IsEnabled, Is.False);
        Assert.That(AutocastPolicy.CastFor("matmul", [F32, F32]), Is.EqualTo(new[] { F32, F32 }));
        Assert.That(AutocastPolicy.CastFor("softmax", [BF]), Is.EqualTo(new[] { BF }));
    }

    [Test]
    public void UnknownOpsAreAnErrorEvenWithAutocastOff()
    {
        var ex = Assert.Throws<KeyNotFoundException>(() => AutocastPolicy.CastFor("frobnicate", [F32]));
        Assert.That(ex!.Message, Does.Contain("'frobnicate'"));
    }

    [Test]
    public void EveryRuleIsUsedAndNoOpIsListedTwice()
    {
        // The table is built with Dictionary.Add, so a duplicate would already have thrown in the static constructor.
        Assert.That(AutocastPolicy.Rules.Values.Distinct(), Is.EquivalentTo(Enum.GetValues<AmpRule>()));
        Assert.That(AutocastPolicy.Rules.Count, Is.GreaterThan(50));
    }

    [Test]
    public void ScopesNestSuspendAndRestore()
    {
        Assert.That(Autocast.Current, Is.Null);
        using (Autocast.Enter(BF))
        {
            Assert.That(Autocast.Current, Is.EqualTo(BF));
            Assert.That(AutocastPolicy.CastFor("matmul", [F32]), Is.EqualTo(new[] { BF }));
            using (Autocast.Suspend())
            {
                Assert.That(Autocast.IsEnabled, Is.False);
                Assert.That(AutocastPolicy.CastFor("matmul", [F32]), Is.EqualTo(new[] { F32 }));
            }
            Assert.That(Autocast.Current, Is.EqualTo(BF));
        }
        Assert.That(Autocast.Current, Is.Null);
    }

    [Test]
    public void ScopesAreDisposedInnermostFirst()
    {
        var outer = Autocast.Enter(BF);
        var inner = Autocast.Suspend();
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        outer.Dispose();
        outer.Dispose();   // a second dispose is harmless
        Assert.That(Autocast.Current, Is.Null);
    }

    [Test]
    public void OtherThreadsDoNotSeeTheScope()
    {
        using var _ = Autocast.Enter(BF);
        DType? seen = BF;
        var t = new Thread(() => seen = Autocast.Current);
        t.Start(); t.Join();
        Assert.That(seen, Is.Null);
        Assert.That(Autocast.Current, Is.EqualTo(BF));
    }

    [Test]
    public void OnlyBf16IsALowPrecisionDtype()
    {
        var ex = Assert.Throws<ArgumentException>(() => Autocast.Enter(F32));
        Assert.That(ex!.Message, Does.Contain("bf16").And.Contain("float32"));
        Assert.That(Autocast.Current, Is.Null);
    }
}
