<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:t="urn:t">
  <xsl:template match="/"><r xml:lang="de" t:flag="yes"><xsl:copy-of select="//*[@xml:lang]"/></r></xsl:template>
</xsl:stylesheet>
