// autochip core processing element: one accumulator, two datapaths selected per weight.
//   w = {mode, weight}: mode 0  acc <= acc + a * w          (int MAC; +-1 operands run binary
//                                                              layers exactly: a*w = xnor term)
//                       mode 1  acc <= acc - |a - w|        (AdderNet, only when ADDER = 1)
// Two stages (Fmax): a beat's term (the product, or -|a - w|) is registered with its valid and
// last bits, and added to the accumulator in the next cycle. A beat with valid adds its term;
// the tile's last beat (valid & last) puts the finished sum into res and restarts the
// accumulator from zero in the same cycle, so tiles follow each other without a gap and res
// holds a tile's result (two cycles after its last beat entered) until the next tile's last
// beat. The mode bit
// travels down the column with the weight, so one array runs int8, binary and adder layers.
`default_nettype none
module core_pe #(
    parameter integer A_BITS   = 8,
    parameter integer W_BITS   = 8,
    parameter integer ACC_BITS = 32,
    parameter integer ADDER    = 0
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       valid,
    input  wire                       last,
    input  wire [A_BITS-1:0]          a,
    input  wire [W_BITS:0]            w,
    output reg  signed [ACC_BITS-1:0] res
);
    reg signed [ACC_BITS-1:0] acc;
    localparam integer P_BITS = A_BITS + W_BITS;
    localparam integer D_BITS = (A_BITS > W_BITS ? A_BITS : W_BITS) + 1;
    // bits of a registered term: the product, or the adder's -|a - w| (D_BITS + 1 bits)
    localparam integer T_BITS = (ADDER != 0 && D_BITS + 1 > P_BITS) ? D_BITS + 1 : P_BITS;

    wire signed [W_BITS-1:0]   wv   = w[W_BITS-1:0];
    wire                       mode = w[W_BITS];
    wire signed [P_BITS-1:0]   prod = $signed(a) * wv;
    wire signed [D_BITS-1:0]   ax   = {{(D_BITS-A_BITS){a[A_BITS-1]}}, a};
    wire signed [D_BITS-1:0]   wx   = {{(D_BITS-W_BITS){wv[W_BITS-1]}}, wv};
    wire signed [D_BITS-1:0]   diff = ax - wx;
    wire signed [D_BITS:0]     nabs = diff[D_BITS-1] ? {diff[D_BITS-1], diff} : -{1'b0, diff};
    wire signed [ACC_BITS-1:0] t_mac = {{(ACC_BITS-P_BITS){prod[P_BITS-1]}}, prod};
    wire signed [ACC_BITS-1:0] t_add = {{(ACC_BITS-D_BITS-1){nabs[D_BITS]}}, nabs};
    wire signed [ACC_BITS-1:0] term;

    generate
        if (ADDER != 0) begin : g_dual
            assign term = mode ? t_add : t_mac;
        end else begin : g_mac
            assign term = t_mac;
            wire unused_ok = &{1'b0, mode, t_add};
        end
    endgenerate

    // stage 1: the term, registered with its beat's valid and last
    reg                      t_valid, t_last;
    reg signed [T_BITS-1:0]  t_q;
    always @(posedge clk) begin
        if (rst) begin
            t_valid <= 1'b0;
            t_last  <= 1'b0;
        end else begin
            t_valid <= valid;
            t_last  <= last;
        end
        t_q <= term[T_BITS-1:0];
    end
    wire unused_hi = &{1'b0, term[ACC_BITS-1:T_BITS]};

    // stage 2: accumulate
    wire signed [ACC_BITS-1:0] sum = acc + {{(ACC_BITS-T_BITS){t_q[T_BITS-1]}}, t_q};

    always @(posedge clk) begin
        if (rst) begin
            acc <= {ACC_BITS{1'b0}};
            res <= {ACC_BITS{1'b0}};
        end else if (t_valid) begin
            if (t_last) begin
                acc <= {ACC_BITS{1'b0}};
                res <= sum;
            end else begin
                acc <= sum;
            end
        end
    end
endmodule
`default_nettype wire
