// autochip core DMA: AXI4 master with a BUS-byte data bus (AxSIZE = LB = log2(BUS)), INCR
// bursts of whole bus words, at most 256 beats and never across a 4 KB boundary. A read engine
// and a write engine: one burst of each in flight, on AXI's independent read and write channels. A command moves cmd_len bytes from / to byte address cmd_addr (any alignment): it
// covers the bus words from the one holding cmd_addr to the one holding its last byte, and the
// byte strobes mark the bytes inside [cmd_addr, cmd_addr + cmd_len).
//   read  (cmd_write = 0): bus word i of the command (i counting from 0 at the word holding
//                          cmd_addr) appears on rd_valid/rd_data/rd_word with rd_strb;
//                          rready is high unless rd_hold (the destination's write port is
//                          taken in the next cycle: no beat is accepted in this one).
//   write (cmd_write = 1): word i is read from the source with src_re/src_word and taken from
//                          src_data one cycle later (a registered RAM read port that holds);
//                          WSTRB masks the bytes outside the command.
// The source and destination buffers hold DRAM bytes at the same offset within a bus word as
// DRAM does, so no byte lane is rotated. done pulses for one cycle after the last R beat / B
// response. Per burst of L beats this costs L cycles plus the address and response handshakes
// (autochip.predictor.core_model.dma_cycles).
// A posted write (cmd_post = 1 with cmd_write) gives no done: the write engine runs on while
// reads are issued (wr_busy is high until its last B response). A command is only issued to an
// idle engine: the controller waits for wr_busy low before a write, and before a read of what
// the posted write may still be writing.
`default_nettype none
module core_dma #(
    parameter integer BUS = 4,   // data bus bytes: 4 .. 64, a power of two
    parameter integer LB  = 2    // log2(BUS)
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             cmd_valid,
    input  wire             cmd_write,
    input  wire [31:0]      cmd_addr,
    input  wire [31:0]      cmd_len,
    input  wire             cmd_post,
    input  wire             rd_hold,
    output wire             idle,
    output wire             wr_busy,
    output reg              done,
    output reg              rd_valid,
    output reg  [8*BUS-1:0] rd_data,
    output reg  [BUS-1:0]   rd_strb,
    output reg  [31:0]      rd_word,
    output wire             src_re,
    output wire [31:0]      src_word,
    input  wire [8*BUS-1:0] src_data,
    // AXI4 master
    output wire [31:0]      m_axi_awaddr,
    output wire [7:0]       m_axi_awlen,
    output wire [2:0]       m_axi_awsize,
    output wire [1:0]       m_axi_awburst,
    output wire [0:0]       m_axi_awid,
    output wire             m_axi_awlock,
    output wire [3:0]       m_axi_awcache,
    output wire [2:0]       m_axi_awprot,
    output wire             m_axi_awvalid,
    input  wire             m_axi_awready,
    output wire [8*BUS-1:0] m_axi_wdata,
    output wire [BUS-1:0]   m_axi_wstrb,
    output wire             m_axi_wlast,
    output wire             m_axi_wvalid,
    input  wire             m_axi_wready,
    input  wire [0:0]       m_axi_bid,
    input  wire [1:0]       m_axi_bresp,
    input  wire             m_axi_bvalid,
    output wire             m_axi_bready,
    output wire [31:0]      m_axi_araddr,
    output wire [7:0]       m_axi_arlen,
    output wire [2:0]       m_axi_arsize,
    output wire [1:0]       m_axi_arburst,
    output wire [0:0]       m_axi_arid,
    output wire             m_axi_arlock,
    output wire [3:0]       m_axi_arcache,
    output wire [2:0]       m_axi_arprot,
    output wire             m_axi_arvalid,
    input  wire             m_axi_arready,
    input  wire [0:0]       m_axi_rid,
    input  wire [8*BUS-1:0] m_axi_rdata,
    input  wire [1:0]       m_axi_rresp,
    input  wire             m_axi_rlast,
    input  wire             m_axi_rvalid,
    output wire             m_axi_rready
);
    localparam [1:0] R_IDLE = 2'd0, R_AR = 2'd1, R_R = 2'd2;
    localparam [1:0] W_IDLE = 2'd0, W_AW = 2'd1, W_W = 2'd2, W_B = 2'd3;
    localparam [2:0] SIZE = LB[2:0];

    // command geometry
    wire [31:0] cmd_end   = cmd_addr + cmd_len - 32'd1;
    wire [31:0] cmd_words = (cmd_end >> LB) - (cmd_addr >> LB) + 32'd1;

    // ---- read engine
    reg  [1:0]    rstate;
    reg  [31:0]   raddr;     // byte address of the next bus word (aligned)
    reg  [31:0]   rleft;     // bus words not yet transferred, this burst included
    reg  [31:0]   rindex;    // word index of the next beat within the command
    reg  [31:0]   rnlast;    // word index of the command's last word
    reg  [LB-1:0] rfirst_b;  // first valid byte in word 0
    reg  [LB-1:0] rlast_b;   // last valid byte in the last word
    // ---- write engine
    reg  [1:0]    wstate;
    reg  [31:0]   waddr, wleft, windex, wnlast;
    reg  [LB-1:0] wfirst_b, wlast_b;
    reg  [8:0]    beats;     // beats left in the write burst
    reg           wpost;     // the write in flight is posted: no done

    // burst length: up to the next 4 KB boundary, at most 256 beats, at most what is left
    function automatic [8:0] burst_len(input [11:0] a, input [31:0] left);
        reg [12:0] edge_b;
        reg [31:0] to_edge, cap;
        begin
            edge_b  = 13'd4096 - {1'b0, a};
            to_edge = {19'd0, edge_b} >> LB;
            cap     = (to_edge < 32'd256) ? to_edge : 32'd256;
            burst_len = (left < cap) ? left[8:0] : cap[8:0];
        end
    endfunction

    // byte strobes of word `i` of a command
    function automatic [BUS-1:0] strobes(input [31:0] i, input [31:0] nlast,
                                         input [LB-1:0] first_b, input [LB-1:0] last_b);
        integer b;
        begin
            for (b = 0; b < BUS; b = b + 1) begin
                strobes[b] = !((i == 32'd0) && (b < first_b)) && !((i == nlast) && (b > last_b));
            end
        end
    endfunction

    wire [8:0] rblen = burst_len(raddr[11:0], rleft);
    wire [8:0] wblen = burst_len(waddr[11:0], wleft);
    wire       wfire = (wstate == W_W) & m_axi_wready;

    assign idle          = (rstate == R_IDLE) & (wstate == W_IDLE);
    assign wr_busy       = (wstate != W_IDLE);
    assign m_axi_awaddr  = waddr;
    assign m_axi_awlen   = wblen[7:0] - 8'd1;
    assign m_axi_awsize  = SIZE;
    assign m_axi_awburst = 2'b01;
    assign m_axi_awid    = 1'b0;
    assign m_axi_awlock  = 1'b0;
    assign m_axi_awcache = 4'd0;
    assign m_axi_awprot  = 3'd0;
    assign m_axi_awvalid = (wstate == W_AW);
    assign m_axi_wdata   = src_data;
    assign m_axi_wstrb   = strobes(windex, wnlast, wfirst_b, wlast_b);
    assign m_axi_wlast   = (beats == 9'd1);
    assign m_axi_wvalid  = (wstate == W_W);
    assign m_axi_bready  = (wstate == W_B);
    assign m_axi_araddr  = raddr;
    assign m_axi_arlen   = rblen[7:0] - 8'd1;
    assign m_axi_arsize  = SIZE;
    assign m_axi_arburst = 2'b01;
    assign m_axi_arid    = 1'b0;
    assign m_axi_arlock  = 1'b0;
    assign m_axi_arcache = 4'd0;
    assign m_axi_arprot  = 3'd0;
    assign m_axi_arvalid = (rstate == R_AR);
    assign m_axi_rready  = (rstate == R_R) & ~rd_hold;
    assign src_re        = (wstate == W_AW) | wfire;
    assign src_word      = wfire ? windex + 32'd1 : windex;

    wire unused_ok = &{1'b0, m_axi_bid, m_axi_bresp, m_axi_rid, m_axi_rresp, rblen[8]};
    wire r_go = cmd_valid & ~cmd_write & (rstate == R_IDLE);
    wire w_go = cmd_valid & cmd_write & (wstate == W_IDLE);

    always @(posedge clk) begin
        if (rst) begin
            rstate   <= R_IDLE;
            raddr    <= 32'd0;
            rleft    <= 32'd0;
            rindex   <= 32'd0;
            rnlast   <= 32'd0;
            rfirst_b <= {LB{1'b0}};
            rlast_b  <= {LB{1'b0}};
            wstate   <= W_IDLE;
            waddr    <= 32'd0;
            wleft    <= 32'd0;
            windex   <= 32'd0;
            wnlast   <= 32'd0;
            wfirst_b <= {LB{1'b0}};
            wlast_b  <= {LB{1'b0}};
            beats    <= 9'd0;
            wpost    <= 1'b0;
            done     <= 1'b0;
            rd_valid <= 1'b0;
            rd_data  <= {8*BUS{1'b0}};
            rd_strb  <= {BUS{1'b0}};
            rd_word  <= 32'd0;
        end else begin
            done     <= 1'b0;
            rd_valid <= 1'b0;
            // read engine
            case (rstate)
                R_IDLE: begin
                    if (r_go) begin
                        raddr    <= {cmd_addr[31:LB], {LB{1'b0}}};
                        rleft    <= cmd_words;
                        rindex   <= 32'd0;
                        rnlast   <= cmd_words - 32'd1;
                        rfirst_b <= cmd_addr[LB-1:0];
                        rlast_b  <= cmd_end[LB-1:0];
                        if (cmd_len == 32'd0) begin
                            done <= 1'b1;
                        end else begin
                            rstate <= R_AR;
                        end
                    end
                end
                R_AR: begin
                    if (m_axi_arready) begin
                        rstate <= R_R;
                    end
                end
                R_R: begin
                    if (m_axi_rvalid & ~rd_hold) begin
                        rd_valid <= 1'b1;
                        rd_data  <= m_axi_rdata;
                        rd_strb  <= strobes(rindex, rnlast, rfirst_b, rlast_b);
                        rd_word  <= rindex;
                        rindex   <= rindex + 32'd1;
                        raddr    <= raddr + BUS;
                        rleft    <= rleft - 32'd1;
                        if (m_axi_rlast) begin
                            if (rleft == 32'd1) begin
                                rstate <= R_IDLE;
                                done   <= 1'b1;
                            end else begin
                                rstate <= R_AR;
                            end
                        end
                    end
                end
                default: rstate <= R_IDLE;
            endcase
            // write engine
            case (wstate)
                W_IDLE: begin
                    if (w_go) begin
                        waddr    <= {cmd_addr[31:LB], {LB{1'b0}}};
                        wleft    <= cmd_words;
                        windex   <= 32'd0;
                        wnlast   <= cmd_words - 32'd1;
                        wfirst_b <= cmd_addr[LB-1:0];
                        wlast_b  <= cmd_end[LB-1:0];
                        wpost    <= cmd_post;
                        if (cmd_len == 32'd0) begin
                            done <= ~cmd_post;
                        end else begin
                            wstate <= W_AW;
                        end
                    end
                end
                W_AW: begin
                    if (m_axi_awready) begin
                        wstate <= W_W;
                        beats  <= wblen;
                    end
                end
                W_W: begin
                    if (m_axi_wready) begin
                        windex <= windex + 32'd1;
                        waddr  <= waddr + BUS;
                        wleft  <= wleft - 32'd1;
                        beats  <= beats - 9'd1;
                        if (beats == 9'd1) begin
                            wstate <= W_B;
                        end
                    end
                end
                W_B: begin
                    if (m_axi_bvalid) begin
                        if (wleft == 32'd0) begin
                            wstate <= W_IDLE;
                            if (!wpost) done <= 1'b1;
                        end else begin
                            wstate <= W_AW;
                        end
                    end
                end
                default: wstate <= W_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
