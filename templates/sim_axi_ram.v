// sim_axi_ram: simulation-only AXI4 slave RAM (DRAM model for the core's testbench).
//
// Not for synthesis. It replaces cocotbext-axi's AxiRam (a Python coroutine per beat) so that a
// whole network runs at the simulator's speed, and it reproduces AxiRam's handshake timing as
// measured on the core's DMA (autochip.predictor.core_model, core_timing.yaml):
//   read : the AR handshake at edge k, the first R beat is valid from edge k+1 (one bubble),
//          then one beat per cycle; a burst whose AR was accepted earlier follows the previous
//          burst's last beat without a bubble. AR is accepted while fewer than 2 wait.
//   write: W beats are accepted from the cycle after the AW handshake, one per cycle; the B
//          response is valid from the second edge after the last W beat (one bubble).
//          AW is accepted while fewer than 2 wait; up to 2 B responses wait.
// INCR and FIXED bursts of any AxSIZE up to the bus width; byte strobes on writes; reads return
// the whole word. An address past the RAM or a WRAP burst stops the simulation with a message.
//
// The testbench loads and reads back the contents in bulk: a high `load` at a clock edge runs
// $readmemh(+autochip_dram_load=FILE), a high `dump` runs $writememh(+autochip_dram_dump=FILE)
// of words dump_first .. dump_last. Files hold one DATA_W-bit word per line in hex; a load
// file may start with an @ADDR record (word address) to load part of the RAM.
`default_nettype none
module sim_axi_ram #(
    parameter integer DATA_W = 8,      // 8 .. 1024, a power of two
    parameter integer ADDR_W = 32,
    parameter integer ID_W   = 1,
    parameter integer DEPTH  = 1 << 20  // words of DATA_W bits
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                load,
    input  wire                dump,
    input  wire [31:0]         dump_first,
    input  wire [31:0]         dump_last,
    // write address
    input  wire [ID_W-1:0]     s_axi_awid,
    input  wire [ADDR_W-1:0]   s_axi_awaddr,
    input  wire [7:0]          s_axi_awlen,
    input  wire [2:0]          s_axi_awsize,
    input  wire [1:0]          s_axi_awburst,
    input  wire                s_axi_awvalid,
    output wire                s_axi_awready,
    // write data
    input  wire [DATA_W-1:0]   s_axi_wdata,
    input  wire [DATA_W/8-1:0] s_axi_wstrb,
    input  wire                s_axi_wlast,
    input  wire                s_axi_wvalid,
    output wire                s_axi_wready,
    // write response
    output reg  [ID_W-1:0]     s_axi_bid,
    output wire [1:0]          s_axi_bresp,
    output reg                 s_axi_bvalid,
    input  wire                s_axi_bready,
    // read address
    input  wire [ID_W-1:0]     s_axi_arid,
    input  wire [ADDR_W-1:0]   s_axi_araddr,
    input  wire [7:0]          s_axi_arlen,
    input  wire [2:0]          s_axi_arsize,
    input  wire [1:0]          s_axi_arburst,
    input  wire                s_axi_arvalid,
    output wire                s_axi_arready,
    // read data
    output reg  [ID_W-1:0]     s_axi_rid,
    output reg  [DATA_W-1:0]   s_axi_rdata,
    output wire [1:0]          s_axi_rresp,
    output reg                 s_axi_rlast,
    output reg                 s_axi_rvalid,
    input  wire                s_axi_rready
);
    localparam integer LANES = DATA_W / 8;
    localparam integer LB = (LANES <= 1) ? 0 : (LANES <= 2) ? 1 : (LANES <= 4) ? 2 :
                            (LANES <= 8) ? 3 : (LANES <= 16) ? 4 : (LANES <= 32) ? 5 :
                            (LANES <= 64) ? 6 : 7;
    localparam integer QW = ID_W + ADDR_W + 8 + 3 + 2;  // queued request: id, addr, len, size, burst
    localparam [1:0] FIXED = 2'b00, WRAP = 2'b10;

    reg [DATA_W-1:0] mem [0:DEPTH-1];
    reg [8*1024-1:0] load_file;
    reg [8*1024-1:0] dump_file;

    initial begin
        load_file = 0;
        dump_file = 0;
        if (!$value$plusargs("autochip_dram_load=%s", load_file)) load_file = 0;
        if (!$value$plusargs("autochip_dram_dump=%s", dump_file)) dump_file = 0;
    end

    assign s_axi_bresp = 2'b00;
    assign s_axi_rresp = 2'b00;

    // -- request queues (2 entries each): AR, AW ------------------------------------------
    reg [QW-1:0] arq [0:1];
    reg [QW-1:0] awq [0:1];
    reg          arq_head, awq_head;
    reg [1:0]    arq_n, awq_n;
    wire [QW-1:0] ar_in = {s_axi_arid, s_axi_araddr, s_axi_arlen, s_axi_arsize, s_axi_arburst};
    wire [QW-1:0] aw_in = {s_axi_awid, s_axi_awaddr, s_axi_awlen, s_axi_awsize, s_axi_awburst};
    assign s_axi_arready = (arq_n != 2'd2);
    assign s_axi_awready = (awq_n != 2'd2);
    wire ar_push = s_axi_arvalid & s_axi_arready;
    wire aw_push = s_axi_awvalid & s_axi_awready;

    // -- read engine ------------------------------------------------------------------------
    reg              r_active;   // beats of the current burst remain after the one on R
    reg [ADDR_W-1:0] r_addr;     // address of the next beat
    reg [7:0]        r_left;     // beats after the next one
    reg [2:0]        r_size;
    reg [1:0]        r_burst;
    reg [ID_W-1:0]   r_id;
    wire             r_adv = ~s_axi_rvalid | s_axi_rready;
    wire [QW-1:0]    ar_head = arq[arq_head];
    wire [ID_W-1:0]  arh_id = ar_head[QW-1 -: ID_W];
    wire [ADDR_W-1:0] arh_addr = ar_head[13 +: ADDR_W];
    wire [7:0]       arh_len = ar_head[5 +: 8];
    wire [2:0]       arh_size = ar_head[2 +: 3];
    wire [1:0]       arh_burst = ar_head[1:0];
    wire             r_start = r_adv & ~r_active & (arq_n != 2'd0);
    wire [ADDR_W-1:0] r_beat_addr = r_active ? r_addr : arh_addr;
    wire [2:0]       r_beat_size = r_active ? r_size : arh_size;
    wire [1:0]       r_beat_burst = r_active ? r_burst : arh_burst;
    wire [ADDR_W-1:0] r_next_addr = (r_beat_burst == FIXED) ? r_beat_addr
                                  : r_beat_addr + ({{(ADDR_W-1){1'b0}}, 1'b1} << r_beat_size);

    // -- write engine -----------------------------------------------------------------------
    reg              w_active;   // a burst's AW has been taken from the queue
    reg [ADDR_W-1:0] w_addr;
    reg [2:0]        w_size;
    reg [1:0]        w_burst;
    reg [ID_W-1:0]   w_id;
    reg [7:0]        w_left;     // beats after the next one
    reg [ID_W-1:0]   bq [0:1];
    reg              bq_head;
    reg [1:0]        bq_n;
    wire [QW-1:0]    aw_head = awq[awq_head];
    wire [ID_W-1:0]  awh_id = aw_head[QW-1 -: ID_W];
    wire [ADDR_W-1:0] awh_addr = aw_head[13 +: ADDR_W];
    wire [2:0]       awh_size = aw_head[2 +: 3];
    wire [1:0]       awh_burst = aw_head[1:0];
    assign s_axi_wready = (w_active | (awq_n != 2'd0)) & (bq_n != 2'd2);
    wire             w_fire = s_axi_wvalid & s_axi_wready;
    wire             w_take = w_fire & ~w_active;  // the queued AW becomes the current burst
    wire [7:0]       awh_len = aw_head[5 +: 8];
    wire             w_last = w_active ? (w_left == 8'd0) : (awh_len == 8'd0);
    wire [ADDR_W-1:0] w_beat_addr = w_active ? w_addr : awh_addr;
    wire [2:0]       w_beat_size = w_active ? w_size : awh_size;
    wire [1:0]       w_beat_burst = w_active ? w_burst : awh_burst;
    wire [ID_W-1:0]  w_beat_id = w_active ? w_id : awh_id;
    wire [ADDR_W-1:0] w_next_addr = (w_beat_burst == FIXED) ? w_beat_addr
                                  : w_beat_addr + ({{(ADDR_W-1){1'b0}}, 1'b1} << w_beat_size);
    wire [ADDR_W-1:0] w_word = w_beat_addr >> LB;
    wire [ADDR_W-1:0] r_word = r_beat_addr >> LB;
    wire              b_push = w_fire & w_last;
    wire              b_pop = ~(s_axi_bvalid & ~s_axi_bready) & (bq_n != 2'd0);

    integer i;

    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        if (load) begin
            if (load_file == 0) begin
                $display("sim_axi_ram: load without +autochip_dram_load=FILE");
                $finish;
            end
            $readmemh(load_file, mem);
        end
        if (dump) begin
            if (dump_file == 0) begin
                $display("sim_axi_ram: dump without +autochip_dram_dump=FILE");
                $finish;
            end
            $writememh(dump_file, mem, dump_first, dump_last);
        end
        if (r_adv & (r_active | r_start)) begin
            if (r_word >= DEPTH) begin
                $display("sim_axi_ram: read at byte address 0x%h past the RAM (%0d words)",
                         r_beat_addr, DEPTH);
                $finish;
            end else begin
                s_axi_rdata <= mem[r_word];
            end
        end
        // the write after the read, blocking: mem is read (and dumped) only in this block,
        // before it, so both see the old word as with a non-blocking write (Verilator: a
        // non-blocking write keeps a value, address and flag per byte lane, cleared and tested
        // every cycle)
        if (w_fire) begin
            if (w_word >= DEPTH) begin
                $display("sim_axi_ram: write at byte address 0x%h past the RAM (%0d words)",
                         w_beat_addr, DEPTH);
                $finish;
            end else begin
                for (i = 0; i < LANES; i = i + 1) begin
                    if (s_axi_wstrb[i]) mem[w_word][8*i +: 8] = s_axi_wdata[8*i +: 8];
                end
            end
        end
        if (rst) begin
            arq_head     <= 1'b0;
            arq_n        <= 2'd0;
            awq_head     <= 1'b0;
            awq_n        <= 2'd0;
            r_active     <= 1'b0;
            r_addr       <= {ADDR_W{1'b0}};
            r_left       <= 8'd0;
            r_size       <= 3'd0;
            r_burst      <= 2'd0;
            r_id         <= {ID_W{1'b0}};
            s_axi_rvalid <= 1'b0;
            s_axi_rlast  <= 1'b0;
            s_axi_rid    <= {ID_W{1'b0}};
            w_active     <= 1'b0;
            w_addr       <= {ADDR_W{1'b0}};
            w_size       <= 3'd0;
            w_burst      <= 2'd0;
            w_id         <= {ID_W{1'b0}};
            w_left       <= 8'd0;
            bq_head      <= 1'b0;
            bq_n         <= 2'd0;
            s_axi_bvalid <= 1'b0;
            s_axi_bid    <= {ID_W{1'b0}};
        end else begin
            // AR queue: push at the tail, pop the head when a burst starts
            if (ar_push) arq[arq_head ^ arq_n[0]] <= ar_in;
            if (ar_push & (ar_in[1:0] == WRAP)) begin
                $display("sim_axi_ram: WRAP bursts are not modelled (read at 0x%h)",
                         s_axi_araddr);
                $finish;
            end
            arq_n <= arq_n + {1'b0, ar_push} - {1'b0, r_start};
            if (r_start) arq_head <= ~arq_head;
            // R: the next beat goes on the bus when the bus is free
            if (r_adv) begin
                if (r_active | r_start) begin
                    s_axi_rvalid <= 1'b1;
                    s_axi_rid    <= r_active ? r_id : arh_id;
                    s_axi_rlast  <= r_active ? (r_left == 8'd0) : (arh_len == 8'd0);
                    r_addr       <= r_next_addr;
                    if (r_start) begin
                        r_active <= (arh_len != 8'd0);
                        r_left   <= arh_len - 8'd1;
                        r_size   <= arh_size;
                        r_burst  <= arh_burst;
                        r_id     <= arh_id;
                    end else begin
                        r_active <= (r_left != 8'd0);
                        r_left   <= r_left - 8'd1;
                    end
                end else begin
                    s_axi_rvalid <= 1'b0;
                    s_axi_rlast  <= 1'b0;
                end
            end
            // AW queue and W beats
            if (aw_push) awq[awq_head ^ awq_n[0]] <= aw_in;
            if (aw_push & (aw_in[1:0] == WRAP)) begin
                $display("sim_axi_ram: WRAP bursts are not modelled (write at 0x%h)",
                         s_axi_awaddr);
                $finish;
            end
            awq_n <= awq_n + {1'b0, aw_push} - {1'b0, w_take};
            if (w_take) awq_head <= ~awq_head;
            if (w_fire) begin
                if (s_axi_wlast != w_last) begin
                    $display("sim_axi_ram: WLAST %0d where the burst length says %0d (0x%h)",
                             s_axi_wlast, w_last, w_beat_addr);
                    $finish;
                end
                w_active <= ~w_last;
                w_left   <= w_active ? w_left - 8'd1 : awh_len - 8'd1;
                w_addr   <= w_next_addr;
                w_size   <= w_beat_size;
                w_burst  <= w_beat_burst;
                w_id     <= w_beat_id;
            end
            // B: queued at the last W beat, on the bus from the next edge
            if (b_push) bq[bq_head ^ bq_n[0]] <= w_beat_id;
            if (b_pop) begin
                s_axi_bvalid <= 1'b1;
                s_axi_bid    <= bq[bq_head];
                bq_head      <= ~bq_head;
            end else if (s_axi_bready) begin
                s_axi_bvalid <= 1'b0;
            end
            bq_n <= bq_n + {1'b0, b_push} - {1'b0, b_pop};
        end
    end
    /* verilator lint_on BLKSEQ */
endmodule
`default_nettype wire
