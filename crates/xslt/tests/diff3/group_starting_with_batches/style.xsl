<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Head record starts a batch: group-starting-with, with a check of the sum record. -->
  <xsl:template match="/meldungen">
    <stapel>
      <xsl:for-each-group select="satz" group-starting-with="satz[@typ = 'K']">
        <xsl:variable name="n" select="count(current-group()[@typ = 'D'])"/>
        <behoerde name="{@behoerde}" monat="{substring-after(., 'Kopf ')}" n="{$n}"
                  ok="{$n = xs:integer(substring-after(current-group()[@typ = 'S'], 'Summe '))}">
          <xsl:for-each select="current-group()[@typ = 'D']">
            <vorgang az="{@az}" lfd="{position()}"><xsl:value-of select="."/></vorgang>
          </xsl:for-each>
        </behoerde>
      </xsl:for-each-group>
    </stapel>
  </xsl:template>
</xsl:stylesheet>
