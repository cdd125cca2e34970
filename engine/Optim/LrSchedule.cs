namespace MtlMoe.Engine.Optim;

/// <summary>A learning rate as a function of the step index (0-based). Pure: the same step always gives the same value.</summary>
public abstract class LrSchedule
{
    /// <summary>The learning rate at <paramref name="step"/> (≥ 0).</summary>
    public double At(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, $"{GetType().Name}: step must be ≥ 0");
        return Compute(step);
    }

    /// <summary>The value at a validated step.</summary>
    protected abstract double Compute(long step);

    /// <summary>Sets <paramref name="optimizer"/>'s learning rate to <see cref="At"/>(step) and returns it.</summary>
    public double Apply(Optimizer optimizer, long step) => optimizer.LearningRate = At(step);

    /// <summary>Linear warm-up over <paramref name="warmupSteps"/> to <paramref name="baseLr"/>, then cosine decay to <paramref name="minLr"/> at <paramref name="totalSteps"/>.</summary>
    public static LrSchedule WarmupCosine(double baseLr, long warmupSteps, long totalSteps, double minLr = 0)
    {
        if (totalSteps <= warmupSteps) throw new ArgumentException($"warmup_cosine: total steps {totalSteps} must exceed warm-up steps {warmupSteps}");
        return new WarmupThen(new LinearWarmup(baseLr, warmupSteps), warmupSteps, new Cosine(baseLr, totalSteps - warmupSteps, minLr));
    }

    internal static void CheckLr(string name, double lr)
    {
        if (!(lr >= 0) || !double.IsFinite(lr)) throw new ArgumentOutOfRangeException(nameof(lr), lr, $"{name}: learning rate must be finite and ≥ 0");
    }
}

/// <summary>The same rate at every step.</summary>
public sealed class ConstantLr : LrSchedule
{
    private readonly double _lr;
    /// <summary>Always <paramref name="lr"/>.</summary>
    public ConstantLr(double lr) { CheckLr("constant", lr); _lr = lr; }
    /// <inheritdoc />
    protected override double Compute(long step) => _lr;
}

/// <summary>lr(t) = base · min(1, (t + 1) / W): rises linearly over the first W steps (never 0), then stays at base.</summary>
public sealed class LinearWarmup : LrSchedule
{
    private readonly double _base;
    private readonly long _warmup;
    /// <summary>Warms up to <paramref name="baseLr"/> over <paramref name="warmupSteps"/> steps (0: constant).</summary>
    public LinearWarmup(double baseLr, long warmupSteps)
    {
        CheckLr("linear_warmup", baseLr);
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "linear_warmup: warm-up steps must be ≥ 0");
        _base = baseLr; _warmup = warmupSteps;
    }
    /// <inheritdoc />
    protected override double Compute(long step) => step + 1 >= _warmup ? _base : _base * (step + 1) / _warmup;
}

/// <summary>lr(t) = min + (base − min)·(1 + cos(π·t/T))/2 for t &lt; T, min afterwards.</summary>
public sealed class Cosine : LrSchedule
{
    private readonly double _base, _min;
    private readonly long _total;
    /// <summary>Cosine decay from <paramref name="baseLr"/> to <paramref name="minLr"/> over <paramref name="totalSteps"/>.</summary>
    public Cosine(double baseLr, long totalSteps, double minLr = 0)
    {
        CheckLr("cosine", baseLr); CheckLr("cosine", minLr);
        if (totalSteps <= 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "cosine: total steps must be > 0");
        _base = baseLr; _total = totalSteps; _min = minLr;
    }
    /// <inheritdoc />
    protected override double Compute(long step) =>
        step >= _total ? _min : _min + (_base - _min) * 0.5 * (1 + Math.Cos(Math.PI * step / _total));
}

/// <summary>lr(t) = base · γ^⌊t / N⌋.</summary>
public sealed class StepDecay : LrSchedule
{
    private readonly double _base, _gamma;
    private readonly long _every;
    /// <summary>Multiplies <paramref name="baseLr"/> by <paramref name="gamma"/> every <paramref name="stepSize"/> steps.</summary>
    public StepDecay(double baseLr, long stepSize, double gamma = 0.1)
    {
        CheckLr("step_decay", baseLr);
        if (stepSize <= 0) throw new ArgumentOutOfRangeException(nameof(stepSize), stepSize, "step_decay: step size must be > 0");
        if (!(gamma > 0)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "step_decay: gamma must be > 0");
        _base = baseLr; _every = stepSize; _gamma = gamma;
    }
    /// <inheritdoc />
    protected override double Compute(long step) => _base * Math.Pow(_gamma, step / _every);
}

/// <summary>One schedule for the first W steps, another (counting from 0 again) after them.</summary>
public sealed class WarmupThen : LrSchedule
{
    private readonly LrSchedule _first, _then;
    private readonly long _switch;
    /// <summary><paramref name="first"/> for steps [0, W), then <paramref name="then"/>.At(t − W).</summary>
    public WarmupThen(LrSchedule first, long warmupSteps, LrSchedule then)
    {
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "warmup_then: warm-up steps must be ≥ 0");
        _first = first; _switch = warmupSteps; _then = then;
    }
    /// <inheritdoc />
    protected override double Compute(long step) => step < _switch ? _first.At(step) : _then.At(step - _switch);
}
